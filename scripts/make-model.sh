#!/usr/bin/env bash
# Rebuilds a shipped default model from synthetic data only:
#   bash scripts/make-model.sh jp-firms   # Japanese firm-name crops + OCR (linking)
#   bash scripts/make-model.sh news       # newspaper photos + captions (noisy duplicates)
# Writes data/<name>-{train,val} (git-ignored), runs/<name>/ (checkpoints) and the exported,
# verified model in clippings/assets/models/<name>/. Measured wall time on the project's
# 2-core machine: see docs/model.md.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: scripts/make-model.sh jp-firms|news}
export PYTHONWARNINGS=ignore
py=.venv/bin/python
[ -x "$py" ] || { echo "run scripts/install.sh first" >&2; exit 2; }

case "$name" in
  jp-firms)
    synth_train=(jp-firms data/jp-firms-train --task train --entities 2500 --instances 4 --seed 1 --fonts train --degradations train)
    synth_val=(jp-firms data/jp-firms-val --task link --entities 400 --seed 2 --fonts train --degradations train)
    preset=small-crops ;;
  news)
    synth_train=(news data/news-train --task train --entities 2000 --instances 4 --seed 11)
    synth_val=(news data/news-val --task dedup --entities 500 --seed 12)
    preset=small-photos ;;
  *) echo "unknown model $name (jp-firms or news)" >&2; exit 2 ;;
esac

$py -m clippings.cli synth "${synth_train[@]}" --workers 2 --overwrite
$py -m clippings.cli synth "${synth_val[@]}" --workers 2 --overwrite
$py -m clippings.cli train --data "data/$name-train" --val "data/$name-val" --out "runs/$name" \
    --preset "$preset" --stage1-epochs 3 --stage2-epochs 6 --seed 0
$py -m clippings.cli export "runs/$name" --out "clippings/assets/models/$name" --name "$name" --fp16 --int8
