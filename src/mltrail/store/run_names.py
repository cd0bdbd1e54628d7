"""Random run names in MLflow's style (``<adjective>-<noun>-<number>``), shared by every store."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "agreeable", "bold", "brave", "bright", "calm", "capable", "carefree", "clean", "clever", "colorful",
    "curious", "dapper", "delightful", "eager", "efficient", "elegant", "fearless", "gentle", "glamorous",
    "gregarious", "honorable", "humble", "industrious", "intelligent", "jovial", "kindly", "languid", "lively",
    "loud", "luxuriant", "magnificent", "marvelous", "merciful", "nimble", "omniscient", "painted", "polite",
    "powerful", "redolent", "resilient", "rogue", "sassy", "secretive", "selective", "silent", "skillful",
    "smiling", "spiffy", "stately", "suave", "sedate", "tasteful", "thundering", "trusting", "unequaled",
    "upbeat", "useful", "valuable", "victorious", "welcoming", "wise", "zealous",
)  # fmt: skip
_NOUNS = (
    "ant", "ape", "asp", "auk", "bass", "bat", "bear", "bee", "bird", "boar", "bug", "calf", "carp", "cat",
    "chimp", "cod", "colt", "conch", "cow", "crab", "crane", "croc", "crow", "cub", "deer", "doe", "dog",
    "dolphin", "donkey", "dove", "duck", "eel", "elk", "fawn", "finch", "fish", "flea", "fly", "foal", "fowl",
    "fox", "frog", "gnat", "gnu", "goat", "goose", "grouse", "grub", "gull", "hare", "hawk", "hen", "hog",
    "horse", "hound", "jay", "kit", "kite", "koi", "lamb", "lark", "loon", "lynx", "mare", "midge", "mink",
    "mole", "moose", "moth", "mouse", "mule", "newt", "owl", "ox", "panda", "penguin", "perch", "pig", "pug",
    "quail", "ram", "rat", "ray", "robin", "roo", "rook", "seal", "shad", "shark", "sheep", "shoat", "shrew",
    "shrike", "shrimp", "skink", "skunk", "sloth", "slug", "smelt", "snail", "snake", "snipe", "sow", "sponge",
    "squid", "squirrel", "stag", "steed", "stoat", "stork", "swan", "tern", "toad", "trout", "turtle", "vole",
    "wasp", "whale", "wolf", "worm", "wren", "yak", "zebra",
)  # fmt: skip


def random_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(0, 999)}"
