"""The candidate photographs of the scene library, each with its COCO class.

The curated list that ``dasha scenes build`` pins and checks: which Tux Paint stamps are
photographs of a COCO class, which whole photographs carry a target, which photographs
serve as backgrounds. Changing it and rebuilding gives a new catalogue.
"""

from __future__ import annotations

from pathlib import Path

from dasha.errors import ConfigError
from dasha.sim.library import Photo, builtin_photos
from dasha.sim.sources import OPENCV_DOC, TUXPAINT_STAMPS

_STAMPS = "usr/share/tuxpaint/stamps/"
_OPENCV = "usr/share/doc/opencv-doc/examples/data/"

# Tux Paint stamps that are photographs of a COCO class (path under stamps/ -> class).
# Left out on purpose: drawings ("cartoon" folders), mirrored copies of a photo (the same
# source photograph twice), and animals COCO has no class for (deer, camel, lion...).
CUTOUT_CLASSES: dict[str, str] = {
    **{
        f"animals/birds/{n}.png": "bird"
        for n in [
            "adelaide-rosella",
            "albino_peahen",
            "blackbird",
            "chicken_profile",
            "crow",
            "crowned_crane",
            "cuckoo",
            "drake",
            "duck",
            "gander",
            "guineafowl",
            "helmeted_guineafowl",
            "hen",
            "heron_greatblue",
            "heron_greatblue_flying",
            "lark",
            "little-penguin",
            "magellanic_penguin",
            "magpie",
            "nandou",
            "ostrich",
            "owl",
            "peacock",
            "pelican",
            "penguin",
            "pigeon",
            "pink_flamingo",
            "quetzal",
            "rainbow-lorikeet",
            "rooster",
            "seagull",
            "silver-gull",
            "tucan",
            "turkey",
            "vulture",
        ]
    },
    "seasonal/easter/bluebird.png": "bird",
    "seasonal/easter/chick.png": "bird",
    "animals/mammals/bears/bear.png": "bear",
    "animals/mammals/bears/european-bear.png": "bear",
    "animals/mammals/bears/toys/edward_bear.png": "teddy bear",
    "animals/mammals/bovines/cow.png": "cow",
    "animals/mammals/bovines/cow_white.png": "cow",
    "animals/mammals/bovines/bull.png": "cow",
    "animals/mammals/bovines/zebu.png": "cow",
    "animals/mammals/bovines/sheep.png": "sheep",
    "animals/mammals/bovines/sheep_lamb.png": "sheep",
    "animals/mammals/bovines/ram.png": "sheep",
    "animals/mammals/dogs/dog.png": "dog",
    "animals/mammals/dogs/dingo.png": "dog",
    "animals/mammals/equines/horse.png": "horse",
    "animals/mammals/equines/zebra.png": "zebra",
    "animals/mammals/elephant.png": "elephant",
    "animals/mammals/giraffe.png": "giraffe",
    "seasonal/halloween/blackcat.png": "cat",
    "food/fruit/apple_fuji.png": "apple",
    "food/fruit/apple_granny_smith.png": "apple",
    "food/fruit/apple_green.png": "apple",
    "food/fruit/apple_red.png": "apple",
    "food/fruit/apple_sierra_beauty.png": "apple",
    "people/toys/grannysmith.png": "apple",
    "food/fruit/orange.png": "orange",
    "food/fruit/orange_seville.png": "orange",
    "food/fruit/mandarine.png": "orange",
    "food/fruit/banana.png": "banana",
    "food/vegetables/broccoli.png": "broccoli",
    "food/vegetables/carrot.png": "carrot",
    "food/pizza.png": "pizza",
    "household/dishes/mug.png": "cup",
    "household/toilet.png": "toilet",
    "household/arttools/scissors_small_closed.png": "scissors",
    "household/arttools/scissors_small_open.png": "scissors",
    "sports/basketball.png": "sports ball",
    "sports/soccer.png": "sports ball",
    "sports/football.png": "sports ball",
    "sports/tennis_ball.png": "sports ball",
    "sports/cricketball.png": "sports ball",
    "sports/australian_rules_football.png": "sports ball",
    "sports/tennis_racket.png": "tennis racket",
    "people/fireman200b.png": "person",
    "people/fireman240a.png": "person",
    "military/paratrooper.png": "person",
    "space/spacewalk.png": "person",
    "vehicles/auto/beetle.png": "car",
    "vehicles/auto/sedan.png": "car",
    "vehicles/auto/sportscar2.png": "car",
    "vehicles/emergency/sedan_police.png": "car",
    "vehicles/race/indycar.png": "car",
    "vehicles/auto/truck.png": "truck",
    "vehicles/emergency/firetruck.png": "truck",
    "vehicles/garbagetruck.png": "truck",
    "vehicles/construction/dumper.png": "truck",
    "vehicles/masstransit/green_korean_bus.png": "bus",
    "vehicles/flight/planes/747.png": "aeroplane",
    "military/vehicles/f22_raptor.png": "aeroplane",
    "vehicles/ship/chineseJunk.png": "boat",
    "town/roadsigns/stop.png": "stop sign",
}
# Whole photographs with a target: (source, class). Their box is the detector's own
# detection on the sharp photograph, as for the built-in scenes.
WHOLE_PHOTOS: dict[str, tuple[str, str]] = {
    "ski-astronaut": ("skimage:astronaut", "person"),
    "ski-chelsea": ("skimage:chelsea", "cat"),
    "ski-coffee": ("skimage:coffee", "cup"),
    "ocv-messi5": (f"deb:{OPENCV_DOC.name}|{_OPENCV}messi5.jpg", "person"),
    "ocv-basketball1": (f"deb:{OPENCV_DOC.name}|{_OPENCV}basketball1.png", "person"),
    "ocv-orange": (f"deb:{OPENCV_DOC.name}|{_OPENCV}orange.jpg", "orange"),
    "ocv-apple": (f"deb:{OPENCV_DOC.name}|{_OPENCV}apple.jpg", "apple"),
    "ocv-fruits": (f"deb:{OPENCV_DOC.name}|{_OPENCV}fruits.jpg", "apple"),
}
# Backgrounds: photographs and textures (the check drops a pairing where the background
# alone shows the target's class).
BACKGROUND_SOURCES: dict[str, str] = {
    **{
        f"ocv-{Path(n).stem}": f"deb:{OPENCV_DOC.name}|{_OPENCV}{n}"
        for n in [
            "aero1.jpg",
            "aero3.jpg",
            "baboon.jpg",
            "blox.jpg",
            "board.jpg",
            "building.jpg",
            "butterfly.jpg",
            "box_in_scene.png",
            "graf1.png",
            "graf3.png",
            "home.jpg",
            "leuvenA.jpg",
            "leuvenB.jpg",
            "rubberwhale1.png",
            "smarties.png",
            "starry_night.jpg",
            "stuff.jpg",
            "sudoku.png",
            "HappyFish.jpg",
            "notes.png",
            "pic1.png",
            "pic3.png",
            "squirrel_cls.jpg",
            "aloeL.jpg",
            "text_defocus.jpg",
            "ela_original.jpg",
            "mask.png",
            "Blender_Suzanne1.jpg",
            "left01.jpg",
            "cards.png",
            "chicky_512.png",
            "detect_blob.png",
            "gradient.png",
            "ellipses.jpg",
            "imageTextN.png",
            "licenseplate_motion.jpg",
        ]
    },
    "ski-brick": "skimage:brick",
    "ski-grass": "skimage:grass",
    "ski-gravel": "skimage:gravel",
    "ski-rocket": "skimage:rocket",
    "ski-hubble": "skimage:hubble_deep_field",
    "ski-moon": "skimage:moon",
    "ski-page": "skimage:page",
    "ski-text": "skimage:text",
    "ski-coins": "skimage:coins",
    "ski-ihc": "skimage:immunohistochemistry",
    "ski-retina": "skimage:retina",
    "ski-color": "skimage:colorwheel",
    "mpl-minduka": "matplotlib:Minduka_Present_Blue_Pack.png",
}


def _photo_from_source(pid: str, source: str, role: str, cls: str | None) -> Photo:
    if source.startswith("deb:"):
        package, _, member = source[4:].partition("|")
        return Photo(pid, f"deb:{package}", role, cls, member)
    return Photo(pid, source, role, cls)


def candidate_photos() -> list[Photo]:
    """Every candidate photo, unpinned (no SHA-256 yet)."""
    photos = builtin_photos()
    for path, cls in CUTOUT_CLASSES.items():
        photos.append(
            Photo(
                f"tux-{Path(path).stem}",
                f"deb:{TUXPAINT_STAMPS.name}",
                "cutout",
                cls,
                _STAMPS + path,
            )
        )
    photos += [
        _photo_from_source(pid, src, "photo", cls) for pid, (src, cls) in WHOLE_PHOTOS.items()
    ]
    photos += [
        _photo_from_source(pid, src, "background", None) for pid, src in BACKGROUND_SOURCES.items()
    ]
    ids = [p.id for p in photos]
    if len(set(ids)) != len(ids):
        raise ConfigError("candidate photo ids must be unique")
    return photos
