# srcnn-tf front door. Every target creates .venv and installs the project on first use.
# Variables map to pipeline flags; see README.md for the full table.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# GPU defaults to the build the venv already holds (tensorflow = CUDA, tensorflow_cpu = CPU).
GPU    ?= $(if $(wildcard $(VENV)/lib/python*/site-packages/tensorflow-[0-9]*.dist-info),1,0)
TF_KIND := $(if $(filter 1,$(GPU)),gpu,cpu)
EXTRAS := $(TF_KIND),dev
INSTALLED := $(VENV)/.installed-$(TF_KIND)

SCALE   ?= 3
DATA    ?=
TFDS    ?=
OUT     ?=
WORKERS ?= 0
ARGS    ?=
MODEL   ?= 9-5-5
EPOCHS  ?=
RUN     ?= runs/x$(SCALE)
TRAIN_ARGS ?=
IMAGE   ?=
SIZE    ?=
MODELS  := $(if $(OUT),$(OUT),saved_models)
EVAL    ?= $(firstword $(wildcard ../shared/data/Set5))
SETS    ?= $(subst $(space),$(comma),$(wildcard ../shared/data/Set5 ../shared/data/Set14))
JSON    ?=
EVAL_OUT ?= eval
CHAINS  ?=
IMAGES  ?= $(subst $(space),$(comma),$(wildcard ../shared/data/Set5/butterfly_GT.bmp ../shared/data/Set5/bird_GT.bmp))
MINUTES ?= 20
given    = $(filter command line environment override,$(origin $(1)))
SET     ?= $(firstword $(wildcard ../shared/data/Set14) $(EVAL))
EXTRA_DATA ?=
RECORDS ?=
INIT    ?=
comma := ,
space := $(empty) $(empty)

RECORDS_OUT := $(if $(OUT),$(OUT),tfrecords)
RECORDS_DIR := tfrecords/x$(SCALE)

.PHONY: install records train jax-bundle revive train-jax export tflite upscale evaluate sc-dictionary psnr-time figures ablation test bench bench-records bench-train bench-epochs bench-cache bench-infer clean clean-runs help

help:
	@sed -n 's/^## //p' $(firstword $(MAKEFILE_LIST))

# tensorflow-serving-api (the gRPC client's protos) goes in with --no-deps: its metadata pins
# the full tensorflow package, which would replace the CPU/GPU build chosen by the extra.
# Switching GPU=1 <-> 0 removes the other build first: both install the same tensorflow module.
$(INSTALLED): setup.py setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip uninstall -q -y $(if $(filter gpu,$(TF_KIND)),tensorflow-cpu,tensorflow)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	$(PY) -m pip install -q --no-deps "tensorflow-serving-api>=2.16"
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	touch $@

## make install [GPU=1]            create .venv and install the project (cpu or gpu extra)
install: $(INSTALLED)

## make records SCALE=3 DATA=dir   degraded/bicubic patch TFRecords under tfrecords/x3/ (SCALE=1.5,2,3: one multi-scale set)
records: $(INSTALLED)
	$(PY) -m pipelines.make_records --scale=$(SCALE) --out_dir=$(RECORDS_OUT) \
		--workers=$(WORKERS) $(if $(DATA),--input_dir=$(DATA)) $(if $(TFDS),--tfds_name=$(TFDS)) $(ARGS)

## make train SCALE=3 [MODEL=9-5-5 EPOCHS=.. DATA=a,b RUN=runs/x3 INIT=saved_models/srcnn_x3 RECORDS=dir GPU=1 TRAIN_ARGS=..]   15 minutes unless EPOCHS or a --max_steps/--max_minutes is given
# Records are (re)built only when DATA/TFDS is given or none exist: records a user built are
# never replaced by the default photographs. RECORDS names existing records (any folder).
TRAIN_RECORDS = $(if $(RECORDS),$(RECORDS),$(RECORDS_OUT)/x$(SCALE))
# Whether make train builds records first; ARGS are their flags, lost where it builds none.
BUILDS_RECORDS = $(if $(RECORDS),,$(or $(DATA),$(TFDS),$(if $(wildcard $(RECORDS_OUT)/x$(SCALE)/manifest.json),,1)))
args_go_in_train_args = $(error make $@ ARGS=$(ARGS): $(1); training flags go in TRAIN_ARGS="$(ARGS)")
train: $(INSTALLED)
	$(if $(call given,ARGS),$(if $(BUILDS_RECORDS),,$(call args_go_in_train_args,ARGS \
		are make records' flags and no records are built here)))
	$(if $(and $(RECORDS),$(or $(DATA),$(TFDS))),$(error make train: RECORDS=$(RECORDS) trains on \
		existing records and DATA/TFDS builds new ones under OUT; give one of them))
	$(if $(BUILDS_RECORDS),$(MAKE) --no-print-directory records,$(if $(RECORDS),,@echo "training \
		on the existing records in $(RECORDS_OUT)/x$(SCALE) (DATA=... rebuilds them)"))
	$(PY) -m pipelines.train --records=$(TRAIN_RECORDS) --run_dir=$(RUN) --scale=$(SCALE) \
		--model=$(MODEL) $(if $(EPOCHS),--epochs=$(EPOCHS)) $(if $(INIT),--init_from=$(INIT)) $(TRAIN_ARGS)

## make jax-bundle RECORDS=tfrecords/x3 [INIT=saved_models/srcnn_x3/1,.. OUT=bundle]   image pack + warm-start weights for a JAX machine
jax-bundle: $(INSTALLED)
	$(PY) -m pipelines.jax_bundle --records=$(if $(RECORDS),$(RECORDS),$(RECORDS_DIR)) --out_dir=$(if $(OUT),$(OUT),bundle) \
		$(if $(INIT),--init_from=$(INIT)) $(ARGS)

## make revive INIT=saved_models/srcnn_x4 RECORDS=tfrecords/x4 [OUT=bundle]   refill a model's dead filters with copies of live ones (then make train INIT=bundle/srcnn_x4-11+split.npz)
revive: $(INSTALLED)
	$(PY) -m pipelines.revive --init_from=$(INIT) --records=$(if $(RECORDS),$(RECORDS),$(RECORDS_DIR)) \
		--out_dir=$(if $(OUT),$(OUT),bundle) $(ARGS)

## make train-jax SCALE=3 [PACK=bundle/images.npz RUN=runs/x3_jax INIT=bundle/srcnn_x3-1.npz|runs/x3_jax0 MINUTES=20 TRAIN_ARGS=..]   train where only JAX is (then make export RUN=..)
# Needs no TensorFlow: the .venv when there is one, else the machine's python3 with jax.
PACK    ?= bundle/images.npz
JAX_PY  ?= $(if $(wildcard $(PY)),$(PY),$(PYTHON))
train-jax:
	$(if $(call given,ARGS),$(call args_go_in_train_args,make train-jax reads no ARGS))
	$(JAX_PY) -m pipelines.train_jax --pack=$(PACK) --run_dir=$(RUN) --scale=$(SCALE) \
		--minutes=$(MINUTES) $(if $(INIT),--init=$(INIT)) $(TRAIN_ARGS)

## make export SCALE=3 [RUN=runs/x3 OUT=saved_models]   SavedModel for TF Serving
##   make export FROM=saved_models/srcnn_x3/1   the same weights again as a new version
FROM    ?=
export: $(INSTALLED)
	$(PY) -m pipelines.export $(if $(FROM),--from_saved_model=$(FROM),--run_dir=$(RUN)) \
		--out_dir=$(MODELS) $(ARGS)

## make tflite SCALE=3 [SETS=d1,d2 RUN=runs/x3 RECORDS=dir MODEL=saved_models/srcnn_multiscale]   TFLite variants + report.md beside the newest SavedModel
# int8 calibrates on RECORDS, else on the records of RUN, else on tfrecords/x$(SCALE).
tflite: $(INSTALLED)
	$(PY) -m pipelines.tflite --scale=$(SCALE) --models_dir=$(MODELS) \
		$(if $(RECORDS),--records=$(RECORDS),$(if $(or $(call given,RUN),$(wildcard \
		$(RUN)/config.json)),--run_dir=$(RUN),$(if \
		$(wildcard $(RECORDS_DIR)/manifest.json),--records=$(RECORDS_DIR)))) \
		$(if $(SETS),--eval_dir=$(SETS)) $(if $(filter-out 9-%,$(MODEL)),--model_dir=$(MODEL)) $(ARGS)

## make upscale IMAGE=in.png SCALE=3 [SIZE=1920x1080 OUT=out.png MODEL=saved_models/srcnn_x3]  (SCALE=1.5, SIZE: srcnn_multiscale; MODEL: a model or version folder)
upscale: $(INSTALLED)
	$(if $(IMAGE),,$(error make upscale: IMAGE=photo.png names the image to super-resolve))
	$(PY) -m pipelines.upscale --image=$(IMAGE) $(if $(SIZE),--size=$(SIZE)) $(if $(call \
		given,SCALE),--scale=$(SCALE)) $(if $(OUT),--out=$(OUT)) $(if $(call given,MODEL),--model=$(MODEL)) $(ARGS)

## make evaluate MODEL=<run dir|SavedModel|.tflite|bicubic> SETS=d1,d2 [SCALES=2,3,4 JSON=out.json]  (SCALES: the model's own by default; fractional: 1.5,2.5; a records folder in SETS: its held-out images)
evaluate: $(INSTALLED)
	$(if $(or $(call given,MODEL),$(wildcard $(RUN)/config.json)),,$(error make evaluate: no run \
		$(RUN) to evaluate; MODEL=saved_models/srcnn_x$(SCALE) measures the shipped model, MODEL=bicubic the baseline))
	$(PY) -m pipelines.evaluate --model=$(if $(filter 9-% bicubic,$(MODEL)),$(if $(filter bicubic,$(MODEL)),bicubic,$(RUN)),$(MODEL)) \
		--sets=$(SETS) $(if $(SCALES),--scales=$(SCALES)) --out_dir=$(EVAL_OUT) $(if $(JSON),--json=$(JSON)) $(ARGS)

## make sc-dictionary SCALE=3 [DATA=dir1,dir2]   the sparse-coding baseline's dictionaries (MODEL=sc)
sc-dictionary: $(INSTALLED)
	$(PY) -m pipelines.sc_dictionary --scale=$(SCALE) --out_dir=$(MODELS) \
		$(if $(DATA),--data=$(DATA)) $(ARGS)

## make psnr-time [SET=../shared/data/Set14 SCALE=3]   PSNR against CPU seconds per image, every method
psnr-time: $(INSTALLED)
	$(PY) -m pipelines.psnr_time --set=$(SET) --scale=$(SCALE) --models_dir=$(MODELS) \
		--out_dir=docs $(ARGS)

## make figures RUN=runs/x3 [IMAGES=a.png,b.png] | CHAINS=saved_models/srcnn_x2,..   a run's curves, filters, crops | exported models' training chains
figures: $(INSTALLED)
	$(PY) -m pipelines.figures $(if $(CHAINS),--chains=$(CHAINS),--run_dir=$(RUN) $(if $(IMAGES),--images=$(IMAGES))) $(ARGS)

## make ablation [DATA=T91 EXTRA_DATA=T91,BSD200,General100 MINUTES=20]   long: run in background
ablation: $(INSTALLED)
	$(MAKE) records SCALE=$(SCALE) DATA=$(DATA)
	$(if $(EXTRA_DATA),$(PY) -m pipelines.make_records --scale=$(SCALE) --input_dir=$(EXTRA_DATA) --out_dir=tfrecords/extra --noprogress)
	$(PY) -m pipelines.ablation --records=$(RECORDS_OUT)/x$(SCALE) \
		$(if $(EXTRA_DATA),--extra_records=tfrecords/extra/x$(SCALE)) --minutes=$(MINUTES) \
		$(if $(SETS),--test_dirs=$(SETS)) $(ARGS)

## make test [ARGS=-k model]         the unit and integration tests (ARGS: pytest's flags)
test: $(INSTALLED)
	$(PY) -m pytest -q -n 2 --dist loadfile tests $(ARGS)

## make bench-records              records throughput vs a naive per-patch loop
bench-records: $(INSTALLED)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m benchmarks.bench_records $(ARGS)

## make bench-train                patches/s and GFLOP/s vs the measured peak, loader vs in-memory, PyTorch
bench-train: $(INSTALLED)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m benchmarks.bench_train $(ARGS)

## make bench-epochs               the trainer across an epoch boundary: one stream vs an iterator per epoch
bench-epochs: $(INSTALLED)
	$(PY) -m benchmarks.bench_epochs $(ARGS)

## make bench-cache                the trainer's in-memory records: load seconds and resident MB vs a Python list
bench-cache: $(INSTALLED)
	$(PY) -m benchmarks.bench_cache $(ARGS)

## make bench-infer                megapixels/s: Keras, SavedModel, TFLite variants (512x512)
bench-infer: $(INSTALLED)
	$(PY) -m benchmarks.bench_infer $(ARGS)

## make bench                     the five benchmarks above, one after another
bench: bench-records bench-train bench-epochs bench-cache bench-infer

## make clean                     remove build outputs and caches (records, runs, models stay)
clean:
	rm -rf build dist *.egg-info .pytest_cache
	find srcnn_tf pipelines tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +

## make clean-runs                 also remove tfrecords/ and runs/: unexported training is lost
clean-runs: clean
	rm -rf tfrecords runs
