#!/usr/bin/env bash
# Build a mixtape dataset on Google Cloud Dataflow.
#   deploy/dataflow/launch.sh SPEC.yaml gs://BUCKET/datasets/NAME [extra Beam options...]
# Needs: PROJECT, REGION, BUCKET and IMAGE in the environment (IMAGE: the pushed `make image`), and
# application-default credentials (gcloud auth application-default login). DRY_RUN=1 builds the job only.
set -euo pipefail
spec="$1"; out="$2"; shift 2
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}" "${IMAGE:?set IMAGE}"
args=(
  --project="$PROJECT"
  --region="$REGION"
  --temp_location="gs://$BUCKET/tmp"
  --staging_location="gs://$BUCKET/staging"
  --sdk_container_image="$IMAGE"
  --worker_machine_type="${MACHINE_TYPE:-n2-highmem-4}"
  --max_num_workers="${MAX_WORKERS:-32}"
  --experiments=use_runner_v2
)
if [ "${DRY_RUN:-0}" = 1 ]; then args+=(--dry_run=True); fi
exec mixtape build "$spec" --out "$out" --runner dataflow -- "${args[@]}" "$@"
