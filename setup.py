"""Build script; the metadata lives in setup.cfg. The newest version of each shipped model goes
into <prefix>/share/srcnn-tf/saved_models, where `srcnn-upscale` finds it after `pip install`."""

import os

from setuptools import setup


def shipped_models() -> list[tuple[str, list[str]]]:
    out = []
    for name in sorted(os.listdir("saved_models")) if os.path.isdir("saved_models") else []:
        versions = [v for v in os.listdir(os.path.join("saved_models", name)) if v.isdigit()]
        if not versions:
            continue
        newest = os.path.join("saved_models", name, max(versions, key=int))
        for folder, _, files in os.walk(newest):
            if files:
                out.append((os.path.join("share", "srcnn-tf", folder),
                            [os.path.join(folder, f) for f in sorted(files)]))
    return out


setup(data_files=shipped_models())
