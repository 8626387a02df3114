# srcnn-tf front door. Every target creates .venv and installs the project on first use.
# Variables map to pipeline flags; see README.md for the full table.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
GPU    ?= 0
EXTRAS := $(if $(filter 1,$(GPU)),gpu,cpu),dev

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
PSNR_TIME_SET ?= $(firstword $(wildcard ../shared/data/Set14) $(EVAL))
EXTRA_DATA ?=
INIT    ?=
comma := ,
space := $(empty) $(empty)

RECORDS_OUT := $(if $(OUT),$(OUT),tfrecords)
RECORDS_DIR := tfrecords/x$(SCALE)

.PHONY: install records train jax-bundle train-jax export tflite upscale evaluate sc-dictionary psnr-time figures ablation test bench bench-records bench-train bench-epochs bench-infer clean help

help:
	@sed -n 's/^## //p' $(firstword $(MAKEFILE_LIST))

# tensorflow-serving-api (the gRPC client's protos) goes in with --no-deps: its metadata pins
# the full tensorflow package, which would replace the CPU/GPU build chosen by the extra.
$(VENV)/.installed: setup.py setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	$(PY) -m pip install -q --no-deps "tensorflow-serving-api>=2.16"
	touch $@

## make install [GPU=1]            create .venv and install the project (cpu or gpu extra)
install: $(VENV)/.installed

## make records SCALE=3 DATA=dir   degraded/bicubic patch TFRecords under tfrecords/x3/ (SCALE=1.5,2,3: one multi-scale set)
records: $(VENV)/.installed
	$(PY) -m pipelines.make_records --scale=$(SCALE) --out_dir=$(RECORDS_OUT) \
		--workers=$(WORKERS) $(if $(DATA),--input_dir=$(DATA)) $(if $(TFDS),--tfds_name=$(TFDS)) $(ARGS)

## make train SCALE=3 [MODEL=9-5-5 EPOCHS=.. DATA=a,b RUN=runs/x3 INIT=saved_models/srcnn_x3 GPU=1 TRAIN_ARGS=..]   15 minutes unless EPOCHS or a --max_steps/--max_minutes is given
# Records are (re)built only when DATA/TFDS is given or none exist: records a user built are
# never replaced by the default photographs.
train: $(VENV)/.installed
	$(if $(or $(DATA),$(TFDS)),$(MAKE) --no-print-directory records,$(if \
		$(wildcard $(RECORDS_OUT)/x$(SCALE)/manifest.json),@echo "training on the existing \
		records in $(RECORDS_OUT)/x$(SCALE) (DATA=... rebuilds them)",$(MAKE) --no-print-directory records))
	$(PY) -m pipelines.train --records=$(RECORDS_OUT)/x$(SCALE) --run_dir=$(RUN) --scale=$(SCALE) \
		--model=$(MODEL) $(if $(EPOCHS),--epochs=$(EPOCHS)) $(if $(INIT),--init_from=$(INIT)) $(TRAIN_ARGS)

## make jax-bundle RECORDS=tfrecords/x3 [INIT=saved_models/srcnn_x3/1,.. OUT=bundle]   image pack + warm-start weights for a JAX machine
jax-bundle: $(VENV)/.installed
	$(PY) -m pipelines.jax_bundle --records=$(if $(RECORDS),$(RECORDS),$(RECORDS_DIR)) --out_dir=$(if $(OUT),$(OUT),bundle) \
		$(if $(INIT),--init_from=$(INIT)) $(ARGS)

## make train-jax SCALE=3 [PACK=bundle/images.npz RUN=runs/x3_jax INIT=bundle/srcnn_x3-1.npz|runs/x3_jax0 MINUTES=20 TRAIN_ARGS=..]   train where only JAX is (then make export RUN=..)
# Needs no TensorFlow: the .venv when there is one, else the machine's python3 with jax.
PACK    ?= bundle/images.npz
JAX_PY  ?= $(if $(wildcard $(PY)),$(PY),$(PYTHON))
train-jax:
	$(JAX_PY) -m pipelines.train_jax --pack=$(PACK) --run_dir=$(RUN) --scale=$(SCALE) \
		--minutes=$(MINUTES) $(if $(INIT),--init=$(INIT)) $(TRAIN_ARGS)

## make export SCALE=3 [RUN=runs/x3 OUT=saved_models]   SavedModel for TF Serving
##   make export FROM=saved_models/srcnn_x3/1   the same weights again as a new version
FROM    ?=
export: $(VENV)/.installed
	$(PY) -m pipelines.export $(if $(FROM),--from_saved_model=$(FROM),--run_dir=$(RUN)) \
		--out_dir=$(MODELS) $(ARGS)

## make tflite SCALE=3 [SETS=d1,d2 RUN=runs/x3 RECORDS=dir MODEL=saved_models/srcnn_multiscale]   TFLite variants + report.md beside the newest SavedModel
# int8 calibrates on RECORDS, else on the records of RUN, else on tfrecords/x$(SCALE).
RECORDS ?=
tflite: $(VENV)/.installed
	$(PY) -m pipelines.tflite --scale=$(SCALE) --models_dir=$(MODELS) \
		$(if $(RECORDS),--records=$(RECORDS),$(if $(wildcard $(RUN)/config.json),--run_dir=$(RUN),$(if \
		$(wildcard $(RECORDS_DIR)/manifest.json),--records=$(RECORDS_DIR)))) \
		$(if $(SETS),--eval_dir=$(SETS)) $(if $(filter-out 9-%,$(MODEL)),--model_dir=$(MODEL)) $(ARGS)

## make upscale IMAGE=in.png SCALE=3 [SIZE=1920x1080 OUT=out.png MODEL=saved_models/srcnn_x3]  (SCALE=1.5, SIZE: srcnn_multiscale; MODEL: a model or version folder)
upscale: $(VENV)/.installed
	$(PY) -m pipelines.upscale --image=$(IMAGE) $(if $(SIZE),--size=$(SIZE)) $(if $(call \
		given,SCALE),--scale=$(SCALE)) $(if $(OUT),--out=$(OUT)) $(if $(call given,MODEL),--model=$(MODEL)) $(ARGS)

## make evaluate MODEL=<run dir|SavedModel|.tflite|bicubic> SETS=d1,d2 [SCALES=2,3,4 JSON=out.json]  (SCALES: the model's own by default; fractional: 1.5,2.5)
evaluate: $(VENV)/.installed
	$(PY) -m pipelines.evaluate --model=$(if $(filter 9-% bicubic,$(MODEL)),$(if $(filter bicubic,$(MODEL)),bicubic,$(RUN)),$(MODEL)) \
		--sets=$(SETS) $(if $(SCALES),--scales=$(SCALES)) --out_dir=$(EVAL_OUT) $(if $(JSON),--json=$(JSON)) $(ARGS)

## make sc-dictionary SCALE=3 [DATA=dir1,dir2]   the sparse-coding baseline's dictionaries (MODEL=sc)
sc-dictionary: $(VENV)/.installed
	$(PY) -m pipelines.sc_dictionary --scale=$(SCALE) --out_dir=$(MODELS) \
		$(if $(DATA),--data=$(DATA)) $(ARGS)

## make psnr-time [SET=../shared/data/Set14 SCALE=3]   PSNR against CPU seconds per image, every method
psnr-time: $(VENV)/.installed
	$(PY) -m pipelines.psnr_time --set=$(PSNR_TIME_SET) --scale=$(SCALE) --models_dir=$(MODELS) \
		--out_dir=docs $(ARGS)

## make figures RUN=runs/x3 [IMAGES=a.png,b.png] | CHAINS=saved_models/srcnn_x2,..   a run's curves, filters, crops | exported models' training chains
figures: $(VENV)/.installed
	$(PY) -m pipelines.figures $(if $(CHAINS),--chains=$(CHAINS),--run_dir=$(RUN) $(if $(IMAGES),--images=$(IMAGES))) $(ARGS)

## make ablation [DATA=T91 EXTRA_DATA=T91,BSD200,General100 MINUTES=20]   long: run in background
ablation: $(VENV)/.installed
	$(MAKE) records SCALE=$(SCALE) DATA=$(DATA)
	$(if $(EXTRA_DATA),$(PY) -m pipelines.make_records --scale=$(SCALE) --input_dir=$(EXTRA_DATA) --out_dir=tfrecords/extra --noprogress)
	$(PY) -m pipelines.ablation --records=$(RECORDS_OUT)/x$(SCALE) \
		$(if $(EXTRA_DATA),--extra_records=tfrecords/extra/x$(SCALE)) --minutes=$(MINUTES) \
		$(if $(SETS),--test_dirs=$(SETS)) $(ARGS)

## make test                       the unit and integration tests
test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist loadfile tests

## make bench-records              records throughput vs a naive per-patch loop
bench-records: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m benchmarks.bench_records $(ARGS)

## make bench-train                patches/s and GFLOP/s vs the measured peak, loader vs in-memory, PyTorch
bench-train: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m benchmarks.bench_train $(ARGS)

## make bench-epochs               the trainer across an epoch boundary: one stream vs an iterator per epoch
bench-epochs: $(VENV)/.installed
	$(PY) -m benchmarks.bench_epochs $(ARGS)

## make bench-infer                megapixels/s: Keras, SavedModel, TFLite variants (512x512)
bench-infer: $(VENV)/.installed
	$(PY) -m benchmarks.bench_infer $(ARGS)

bench: bench-records bench-train bench-epochs bench-infer

clean:
	rm -rf tfrecords runs build *.egg-info
