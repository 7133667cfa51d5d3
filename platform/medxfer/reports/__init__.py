"""Tables (markdown/CSV/LaTeX/plain) and figures shared by every verb that prints results."""
