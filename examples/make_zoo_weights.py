"""Write the synthetic data and the two tiny source models that ``zoo_synthetic.yaml`` scores.

    PYTHONPATH=platform python examples/make_zoo_weights.py      # -> examples/synth/, examples/weights/
    medxfer estimate score examples/zoo_synthetic.yaml --target examples/synth \
        --flag synthorgan --name synth --tracking-uri sqlite:///mlruns.db

Offline and CPU-only (a minute or two): synthetic modalities at 28x28, a tiny CNN trained for a
few epochs with plain torch on each source modality, saved with ``torch.save(state_dict)``.
"""

from pathlib import Path

import torch

from medxfer.data import load_target, synthesize
from medxfer.models import create_backbone
from medxfer.transferability.scoring import Prepare

HERE = Path(__file__).resolve().parent
SOURCES = {"synthderm": 4, "synthblood": 3}


def main(epochs: int = 5) -> None:
    synthesize(HERE / "synth", size=28, n_per_class=100, seed=0,
               modalities=[*SOURCES, "synthorgan", "synthpath"])
    (HERE / "weights").mkdir(exist_ok=True)
    for flag, n_classes in SOURCES.items():
        ds = load_target(HERE / "synth", flag, 28, n_train_per_class=None, n_val_per_class=None,
                         as_rgb=True, transform=Prepare((0.5,) * 3, (0.5,) * 3, 3))["train"]
        torch.manual_seed(0)
        model = create_backbone("tiny_cnn", in_chans=3, num_classes=n_classes)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(epochs):
            for x, y in torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
        torch.save(model.state_dict(), HERE / "weights" / f"{flag}.pt")
        print(f"wrote {HERE / 'weights' / f'{flag}.pt'}")


if __name__ == "__main__":
    main()
