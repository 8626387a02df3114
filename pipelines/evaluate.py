"""The paper's table for a model and bicubic:
`make evaluate MODEL=<run dir | SavedModel dir | .tflite | bicubic | sc> SETS=dir1,dir2
SCALES=2,3,4`. `sc` is the sparse-coding baseline (its dictionaries: `make sc-dictionary`).

Writes <out_dir>/results.json, per_image.csv and table.md.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from .common import fail, parse_scales
from srcnn_tf import evaluate, export, imaging, predictors, records

_MODEL = flags.DEFINE_string("model", "bicubic",
                             "Run dir, SavedModel dir, .tflite file, 'bicubic', or 'sc' (sparse "
                             "coding with the newest dictionaries under --models_dir).")
_SC_DICTIONARY = flags.DEFINE_enum(
    "sc_dictionary", "x2", ["x2", "same"],
    "Which dictionaries 'sc' uses: x2 (learned at x2 and used at every scale: the authors' "
    "released setup, the SC of the SRCNN papers' tables) or same (learned at the scale "
    "evaluated; method 'sc (per-scale dictionary)').")
_MODELS_DIR = flags.DEFINE_string("models_dir", None, "Where 'sc' finds sc_x<scale>/ (default: "
                                  "saved_models, or the installed models).")
_SETS = flags.DEFINE_list("sets", None, "Folders of HR images (e.g. Set5,Set14), or records "
                          "folders (tfrecords/x3): their held-out images, at their factor.",
                          required=True)
_SCALES = flags.DEFINE_list("scales", None, "Scales to evaluate (default: the model's own "
                            "factor; 2,3,4 for bicubic, sc and multi-scale models); fractional "
                            "ones (1.5, 2.5) crop HR to multiples of p for p/q and shave "
                            "ceil(scale).")
_OUT_DIR = flags.DEFINE_string("out_dir", "eval", "Where the JSON/CSV/Markdown go.")
_JSON = flags.DEFINE_string("json", None, "JSON summary path (default <out_dir>/results.json).")
_PAPER = flags.DEFINE_bool("paper", False, "Put the papers' published numbers beside ours.")
_SAVE = flags.DEFINE_string("save_images", None, "Write colour SR images to this folder.")
_THREADS = flags.DEFINE_integer("num_threads", None, "LiteRT threads (default: all cores).")
_MAX_PIXELS = flags.DEFINE_integer("max_pixels", imaging.MAX_PIXELS,
                                   "Test images that declare more pixels are skipped (named).",
                                   lower_bound=1)


@flags.validator("scales")
def _check_scales(values: list[str] | None) -> bool:
    if values is not None:
        parse_scales(values, "scales")
    return True


@flags.validator("sets", message="--sets: every entry must be an existing folder")
def _check_sets(values: list[str] | None) -> bool:
    return values is None or all(os.path.isdir(v) for v in values)


def _evaluate(predictor, folder: str, scale: float, name: str,
              save: str | None = None) -> evaluate.Result:
    try:
        return evaluate.evaluate_folder(predictor, folder, scale, name, save_dir=save,
                                        max_pixels=_MAX_PIXELS.value)
    except ValueError as e:
        fail(e)


def _evaluate_records(at, record_dir: str, name: str) -> list[evaluate.Result]:
    """Bicubic and the model on the records' held-out images (each factor they hold)."""
    methods = {"bicubic": lambda s: predictors.bicubic_predictor}
    if name != "bicubic":
        methods[name] = at
    try:
        results = evaluate.evaluate_records(methods, record_dir)
    except (OSError, ValueError) as e:
        fail(f"--sets: {e}")
    logging.info("%s (held-out images) done", record_dir)
    return results


class _PatchBar:
    """tqdm over the patches of the image being coded (SC takes minutes per image)."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None or self.bar.total != total or done <= self.bar.n:
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=total, unit="patch", desc="SC", leave=False)
        self.bar.update(done - self.bar.n)


def _record_scales() -> list[float]:
    """The factors of the records folders among --sets."""
    out = []
    for folder in filter(evaluate.is_records, _SETS.value):
        try:
            out += imaging.scale_list(records.load_manifest(folder)["scale"])
        except (OSError, ValueError, KeyError) as e:
            fail(f"--sets: {folder}: {e}")
    return sorted(set(out))


def _asked(scales: list[float], held_out: list[float]) -> list[float]:
    """The factors to build predictors for: `scales` when --sets has image folders, and the
    records folders' own."""
    folders = [f for f in _SETS.value if not evaluate.is_records(f)]
    return sorted({*(scales if folders else ()), *held_out})


def _sc_predictors(scales: list[float]) -> dict[float, predictors.Predictor]:
    models_dir = _MODELS_DIR.value or export.default_models_dir()
    learned_at = 2 if _SC_DICTIONARY.value == "x2" else None
    out = {}
    for scale in scales:
        try:
            out[scale], path = predictors.sc_predictor(models_dir, scale, learned_at,
                                                       _PatchBar())
        except (FileNotFoundError, ValueError) as e:
            fail(e)
        logging.info("x%d: sparse coding with %s", scale, path)
    return out


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    given = list(parse_scales(_SCALES.value, "scales")) if _SCALES.value else None
    scales = given or [2, 3, 4]
    held_out = _record_scales()
    if _MODEL.value == "sc":
        fractional = [s for s in _asked(scales, held_out) if not isinstance(s, int)]
        if fractional:
            fail(f"--scales: the sparse-coding baseline runs at integer factors only, got "
                 f"{imaging.scale_name(fractional)}")
        per_scale, info = _sc_predictors(_asked(scales, held_out)), {}
        name = "sc" if _SC_DICTIONARY.value == "x2" else "sc (per-scale dictionary)"
    else:
        try:
            predictor, name, info = predictors.load_predictor(_MODEL.value, _THREADS.value)
        except FileNotFoundError as e:
            fail(e)
        trained = imaging.scale_list(info["scale"]) if info.get("scale") else ()
        if given is None and len(trained) == 1:
            scales = list(trained)  # a single-scale model: its own factor unless told
        asked = _asked(scales, held_out)
        if len(trained) == 1 and any(s not in trained for s in asked):
            logging.warning("%s was trained for x%s; also evaluating it at %s", name,
                            imaging.scale_name(trained), imaging.scale_name(asked))
        per_scale = {s: info["at"](s) if "at" in info else predictor for s in asked}
    results = []
    for folder in _SETS.value:
        if evaluate.is_records(folder):
            results += _evaluate_records(per_scale.get, folder, name)
            continue
        for scale in scales:
            results.append(_evaluate(predictors.bicubic_predictor, folder, scale, "bicubic"))
            if name != "bicubic":
                save = os.path.join(_SAVE.value, name.split(" (")[0].replace(" ", "_")) \
                    if _SAVE.value else None
                results.append(_evaluate(per_scale[scale], folder, scale, name, save))
            logging.info("%s x%s done", folder, imaging.scale_label(scale))
    os.makedirs(_OUT_DIR.value, exist_ok=True)
    table = evaluate.write_outputs(
        results, _JSON.value or os.path.join(_OUT_DIR.value, "results.json"),
        os.path.join(_OUT_DIR.value, "per_image.csv"), os.path.join(_OUT_DIR.value, "table.md"),
        paper=_PAPER.value)
    logging.info("PSNR / SSIM (Y, shave = scale)\n%s", table)


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
