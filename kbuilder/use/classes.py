"""Class names for a run's outputs: the known data sets', an image folder's, or the class ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DIGITS = [str(d) for d in range(10)]
FASHION = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# The fine labels in Keras's order (alphabetical, as in the data set's meta file).
CIFAR100 = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
]
CIFAR100_COARSE = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
]
KNOWN = {"mnist": DIGITS, "fashion_mnist": FASHION, "cifar10": CIFAR10, "cifar100": CIFAR100}


def class_names(source: Any, count: int, spec_dir: Path | None = None) -> list[str]:
    """`count` names for the classes of `source` (a spec's train.data.source); ids as text
    when the source does not name its classes or names a different number of them."""
    names: list[str] | None = None
    if source.type == "keras":
        names = (
            CIFAR100_COARSE if getattr(source, "label_mode", "fine") == "coarse" else KNOWN.get(source.name)
        )
    elif source.type == "image_folder":
        folder = Path(source.directory)
        if not folder.is_absolute() and not folder.is_dir() and spec_dir is not None:
            folder = spec_dir / folder
        if folder.is_dir():  # image_dataset_from_directory's order: the sub-folders sorted by name
            names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if names is None or len(names) != count:
        return [str(i) for i in range(count)]
    return list(names)
