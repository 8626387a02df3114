"""The papers' three studies on one fixed budget per arm: `make ablation` (hours: run it in the
background, e.g. `nohup make ablation MINUTES=5 > ablation.log 2>&1 &`; rerunning resumes).

Arms: f2 in {1, 3, 5}, n1/n2 in {32/16, 64/32, 128/64}, each trained on the base records (T91)
and on the larger set's (T91 + BSD200 + General100). Writes <out_dir>/results.json, table.md and
ablation.png.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from .common import fail
from srcnn_tf import ablation, plots, records

_RECORDS = flags.DEFINE_string("records", None, "Records of the base training set (T91).",
                               required=True)
_EXTRA_RECORDS = flags.DEFINE_string("extra_records", None,
                                     "Records of the larger set (T91 + BSD200 + General100).")
_NAMES = flags.DEFINE_list("data_names", ["T91", "T91+BSD200+General100"],
                           "Names of the base and the larger set in tables.")
_OUT_DIR = flags.DEFINE_string("out_dir", "runs/ablation", "Runs and results.")
_MINUTES = flags.DEFINE_float("minutes", 20.0, "Wall-clock budget of each arm.", lower_bound=0.1)
_MAX_STEPS = flags.DEFINE_integer("max_steps", 0, "Step budget instead (0: minutes only).",
                                  lower_bound=0)
_TEST_DIRS = flags.DEFINE_list("test_dirs", [], "HR test folders (e.g. Set5,Set14); reported, "
                               "never used for selection.")
_ONLY = flags.DEFINE_list("only", [], "Subset: architectures ('9-5-5 n32/16') or arms "
                          "('9-5-5 n32/16 @ T91').")
_BATCH = flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)

flags.register_validator("records", lambda p: p is None or os.path.isdir(p),
                         message="--records is not a directory (make records first)")
flags.register_validator("extra_records", lambda p: p is None or os.path.isdir(p),
                         message="--extra_records is not a directory")
flags.register_validator("test_dirs", lambda v: all(os.path.isdir(d) for d in v),
                         message="--test_dirs: every entry must be an existing folder")
flags.register_validator("data_names", lambda v: len(v) == 2 and v[0] != v[1],
                         message="--data_names: two different names")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    datasets = {_NAMES.value[0]: _RECORDS.value}
    if _EXTRA_RECORDS.value:
        datasets[_NAMES.value[1]] = _EXTRA_RECORDS.value
    config = ablation.AblationConfig(
        datasets=datasets, out_dir=_OUT_DIR.value, minutes=_MINUTES.value,
        max_steps=_MAX_STEPS.value, batch_size=_BATCH.value,
        test_dirs=tuple(_TEST_DIRS.value), only=tuple(_ONLY.value))
    try:
        scale = records.load_manifest(_RECORDS.value)["scale"]
        rows = ablation.run_ablation(config, scale, log=logging.info)
    except (FileNotFoundError, ValueError) as e:
        fail(e)
    table = ablation.tables(rows, config.test_names())
    with open(os.path.join(_OUT_DIR.value, "table.md"), "w") as f:
        f.write(table)
    plots.plot_ablation(os.path.join(_OUT_DIR.value, "results.json"),
                        os.path.join(_OUT_DIR.value, "ablation.png"))
    logging.info("\n%s", table)


def run() -> None:
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
