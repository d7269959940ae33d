"""Class names of a classifier: the spec's `train.data.classes`, else the known names of Keras's
data sets, else an image folder's sub-folder names (in the order Keras numbers them).

Predictions and exports show names beside class ids; a run records them in metrics.json and
its export's manifest, so a folder that moved later still has its names.
"""

from __future__ import annotations

from pathlib import Path

from kbuilder.errors import DataError

DIGITS = [str(d) for d in range(10)]
FASHION_MNIST = [
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
CIFAR100_FINE = [
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


def keras_dataset_classes(name: str, label_mode: str = "fine") -> list[str]:
    if name == "cifar100":
        return list(CIFAR100_COARSE if label_mode == "coarse" else CIFAR100_FINE)
    return list({"mnist": DIGITS, "fashion_mnist": FASHION_MNIST, "cifar10": CIFAR10}[name])


def folder_classes(directory: Path) -> list[str] | None:
    """The sub-folder names, sorted as keras.utils.image_dataset_from_directory numbers them."""
    if not directory.is_dir():
        return None
    return sorted(entry.name for entry in directory.iterdir() if entry.is_dir())


def class_names(data, *, spec_dir: Path | None = None) -> list[str] | None:
    """The names of `data` (a DataSpec)'s classes, or None when nothing names them."""
    if data.classes is not None:
        return list(data.classes)
    source = data.source
    if source.type == "keras":
        return keras_dataset_classes(source.name, source.label_mode)
    if source.type == "image_folder":
        directory = Path(source.directory).expanduser()
        if not directory.is_absolute() and not directory.exists() and spec_dir is not None:
            directory = spec_dir / directory
        return folder_classes(directory)
    return None


def check_class_count(names: list[str] | None, outputs: int | None, *, given: bool) -> list[str] | None:
    """`names` when they fit the model's output units (two for one sigmoid unit); DataError for the spec's own list,
    None (no names) for names from elsewhere that do not fit (a sigmoid unit, a regression)."""
    if names is None or outputs is None or len(names) == outputs or (outputs == 1 and len(names) == 2):
        return names
    if given:
        raise DataError(
            f"train.data.classes names {len(names)} classes but the model has {outputs} output units; "
            "give one name per output unit, in label order"
        )
    return None
