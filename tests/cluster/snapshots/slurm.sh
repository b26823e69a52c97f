#!/usr/bin/env bash

#SBATCH -J gdchaos
#SBATCH -p compute
#SBATCH -A chaos-lab
#SBATCH -n 1
#SBATCH --cpus-per-task=32
#SBATCH --mem=120G
#SBATCH -t 04:00:00
export NUMBA_NUM_THREADS=4
export OMP_NUM_THREADS=4
export OPENBLAS_NUM_THREADS=4
export MKL_NUM_THREADS=4
PYTHON -m distributed.cli.dask_worker tcp://SCHEDULER:PORT --name dummy-name --nthreads 4 --memory-limit 14.90GiB --nworkers 8 --nanny --death-timeout 60 --local-directory $TMPDIR --nthreads 1 --lifetime 12960s --lifetime-stagger 720s
