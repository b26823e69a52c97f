#!/usr/bin/env bash

#PBS -N gdchaos
#PBS -q workq
#PBS -A chaos-lab
#PBS -l select=1:ncpus=32:mem=128GB
#PBS -l walltime=04:00:00
export NUMBA_NUM_THREADS=4
export OMP_NUM_THREADS=4
export OPENBLAS_NUM_THREADS=4
export MKL_NUM_THREADS=4
PYTHON -m distributed.cli.dask_worker tcp://SCHEDULER:PORT --name dummy-name --nthreads 4 --memory-limit 14.90GiB --nworkers 8 --nanny --death-timeout 60 --local-directory $TMPDIR --nthreads 1 --lifetime 12960s --lifetime-stagger 720s
