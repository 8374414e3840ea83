"""Reviewers' labels back into the model, measured: stream a labelled dedup set through the local
stack, let a simulated reviewer work the review page's needs-review queue, export the labels,
fine-tune the served model on them, recalibrate the served model on them (`clippings
calibrate`, beside any --calibrate-with sets), and score the models on the labels' held-out
test split and on every --eval-also set.

    python -m bench.review_labels --dataset DIR [--reviews 300] [--epochs 3] [--workdir DIR]
        [--calibrate-with DATASET ...] [--eval-also DATASET ...]

The reviewer knows the dataset's entities and acts through the page as a person would (login,
CSRF token, the same POST forms), taking the queue's order (decisions nearest the threshold
first): a duplicate of the wrong entity is rejected (into an earlier clipping of its own entity
when there is one), a new entity that has an earlier clipping is merged with it, anything else
is confirmed. The linker applies the corrections; the labels are what `clippings labels export`
writes; training is `clippings train --labels ... --init MODEL`. Prints and writes JSON.

The export splits by a hash of the entity (about 70/15/15), so a few reviews may leave the val or
the test split empty, and nothing could be trained or scored; the bench then splits the labels'
entities again in the same hash order with at least one entity in each split, and says so
(`resplit` in the summary).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from bench.common import add_common_args, machine, results_path, write_json


class Reviewer:
    """A browser without the browser: a cookie jar, the login form, the CSRF token, the POST forms."""

    def __init__(self, base_url: str, password: str, name: str = "bench"):
        self.base = base_url
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        page = self._get("login")
        self._post("login", {"csrf_token": _token(page), "reviewer": name, "password": password})
        self.token = _token(self._get(""))

    def _get(self, path: str) -> str:
        with self.http.open(self.base + path, timeout=30) as resp:
            return resp.read().decode()

    def _post(self, path: str, form: dict) -> str:
        data = urllib.parse.urlencode(form).encode()
        with self.http.open(self.base + path, data=data, timeout=60) as resp:
            return resp.read().decode()

    def act(self, action: str, clipping_id: str, target: str | None = None) -> None:
        form = {"csrf_token": self.token} | ({"target_id": target} if target else {})
        self._post(f"{action}/{urllib.parse.quote(clipping_id, safe='')}", form)


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if not found:
        raise RuntimeError("no CSRF token on the page (not logged in?)")
    return found.group(1)


def choose(d, truth: dict[str, str], entity_now: dict[str, str], decided_before: list[str]) -> tuple[str, str | None]:
    """The reviewer's action on decision d -> (action, target clipping or None)."""
    mine = truth.get(d.id)
    same = [x for x in decided_before if truth.get(x) == mine and x != d.id]
    if d.is_duplicate and truth.get(d.matched_id) != mine:
        home = [x for x in same if entity_now.get(x) != entity_now.get(d.id)]
        return "reject", (home[0] if home else None)
    if not d.is_duplicate and same and entity_now.get(same[0]) != entity_now.get(d.id):
        return "merge", same[0]
    return "confirm", None


def review(engine, reviewer: Reviewer, truth: dict[str, str], n: int) -> dict[str, int]:
    """Work the needs-review queue for n decisions -> actions taken, by kind."""
    from sqlalchemy import select

    from clippings.review import queries
    from clippings.review.tables import decisions, membership

    done: dict[str, int] = {"confirm": 0, "reject": 0, "merge": 0}
    for _ in range(n):
        with engine.connect() as conn:
            [*rows] = queries.list_decisions(conn, queries.Filters(queue=True))
            if not rows:
                break
            order = list(conn.execute(select(decisions.c.id).order_by(decisions.c.origin_partition,
                                                                      decisions.c.origin_offset)).scalars())
            entity_now = dict(conn.execute(select(membership.c.clipping_id, membership.c.entity_id)).all())
        d = rows[0]
        before = order[: order.index(d.id)] if d.id in order else []
        action, target = choose(d, truth, entity_now, before)
        reviewer.act(action, d.id, target)
        done[action] += 1
    return done


def wait_applied(stack, engine, expected: int, timeout_s: float = 300) -> dict[str, int]:
    """Until the linker recorded `expected` corrections (Redis) and the review database has read
    the link events of those that moved something -> {"recorded": ..., "events": ...}."""
    from sqlalchemy import func, select

    from clippings.review.tables import correction_events
    from clippings.services.linker.store import RedisState, redis_client

    redis = RedisState(redis_client(stack.redis_url), stack.redis_prefix)
    deadline = time.monotonic() + timeout_s
    while True:
        recorded = redis.client.hlen(redis.key("correction"))
        if recorded >= expected or time.monotonic() > deadline:
            break
        time.sleep(1)
    time.sleep(3)  # the page's reader takes the last correction link events
    with engine.connect() as conn:
        events = conn.execute(select(func.count(func.distinct(correction_events.c.correction_id)))).scalar_one()
    return {"recorded": recorded, "events": events}


def resplit(labels: Path) -> dict[str, int] | None:
    """Give every split of an exported labels set at least one entity, keeping the export's hash
    order of entities -> the new records per split, None when the export's splits stand."""
    from clippings.review.labels import split_bucket

    path = labels / "records.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if {"train", "val", "test"} <= {r["split"] for r in records}:
        return None
    entities = sorted({r["entity"] for r in records}, key=lambda e: (split_bucket(e), e))
    if len(entities) < 3:
        raise RuntimeError(f"{labels}: {len(entities)} entities reviewed, too few for train, val and test; "
                           "give more --reviews")
    n = len(entities)
    n_val = n_test = max(1, round(0.15 * n))
    split = {e: "train" if i < n - n_val - n_test else "val" if i < n - n_test else "test"
             for i, e in enumerate(entities)}
    path.write_text("".join(json.dumps(r | {"split": split[r["entity"]]}, ensure_ascii=False) + "\n"
                            for r in records), encoding="utf-8")
    return dict(sorted(Counter(split[r["entity"]] for r in records).items()))


def clippings_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "clippings.cli", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"clippings {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def scores(dataset: Path, model: str) -> dict:
    out = json.loads(clippings_cli("eval", str(dataset), "--model", model, "--json"))
    return {k: round(v["ari"], 4) for k, v in out["metrics"].items()} | {"n": out["n"]}


def stream_and_review(args, workdir: Path, labels: Path) -> dict:
    from sqlalchemy.engine import make_url

    from clippings.data.dataset import load_dataset
    from clippings.review.db import make_engine
    from clippings.review.labels import export_labels
    from clippings.services.config import ClientSettings, load_settings
    from clippings.services.local.replay import replay
    from clippings.services.local.review import DEFAULT_DATABASE
    from clippings.services.local.stack import LocalStack, free_port
    from clippings.services.local.tail import tail

    records = load_dataset(args.dataset).records
    truth = {r.id: r.entity for r in records}
    password = secrets.token_urlsafe(12)
    stack = LocalStack(workdir=workdir, model=args.model, image_roots=[args.dataset], review_database=DEFAULT_DATABASE,
                       review_port=free_port(), review_password=password, redis_prefix=f"bench-{secrets.token_hex(4)}",
                       delete_redis_keys=True)
    with stack:
        if stack.review is None:
            raise RuntimeError(f"no review page: {stack.review_problem}")
        s = load_settings(ClientSettings, kafka_bootstrap_servers=stack.bootstrap)
        replay(s, records, args.dataset.name, progress=False)
        tally = tail(s, max_events=len(records), out=None, idle_timeout_s=120)
        engine = make_engine(make_url(DEFAULT_DATABASE).set(database=stack.review.scratch)
                             .render_as_string(hide_password=False))
        time.sleep(3)  # the page's reader catches up with the last link events
        actions = review(engine, Reviewer(stack.review.url, password), truth, args.reviews)
        applied = wait_applied(stack, engine, sum(actions.values()))
        summary = export_labels(engine.url.render_as_string(hide_password=False), labels, [args.dataset])
        engine.dispose()
    splits = resplit(labels)
    summary |= {"resplit": splits is not None, "splits": splits or summary["splits"]}
    return {"linked": len(tally.events), "actions": actions, "applied_by_linker": applied, "labels": summary}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, required=True, help="a labelled dedup set (val + test splits)")
    p.add_argument("--model", default="news")
    p.add_argument("--preset", help="the model's preset (default: the one its manifest names)")
    p.add_argument("--reviews", type=int, default=300, help="decisions the reviewer works through")
    p.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (stage 2)")
    p.add_argument("--workdir", type=Path, help="stack logs, labels, run, model (default: a temporary folder)")
    p.add_argument("--eval-also", type=Path, action="append", default=[], metavar="DATASET",
                   help="also score the models on this dataset (repeatable): data the reviewer never saw")
    p.add_argument("--calibrate-with", type=Path, action="append", default=[], metavar="DATASET",
                   help="a validation set to recalibrate on beside the labels (repeatable), e.g. the one the "
                        "model was exported with")
    add_common_args(p, "review-labels")
    args = p.parse_args()
    if args.quick:  # the smoke test's size: a few reviews, one epoch
        args.reviews, args.epochs = min(args.reviews, 10), 1
    started, info = time.time(), machine()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="review-labels-"))
    labels, run, model = workdir / "labels", workdir / "run", workdir / "model"
    calibrated = workdir / "recalibrated"
    streamed = stream_and_review(args, workdir / "stack", labels)
    print(json.dumps(streamed, indent=1))
    preset = ["--preset", args.preset] if args.preset else []
    clippings_cli("train", "--labels", str(labels), "--init", args.model, *preset, "--out", str(run),
                  "--stage1-epochs", "0", "--stage2-epochs", str(args.epochs), "--device", "cpu")
    clippings_cli("export", str(run), "--out", str(model))
    # The served model, its decision tuned again on the labels (train and val: it never trained
    # on them) beside the given validation sets; the graphs stay the served ones.
    calibrate_on = [a for d in args.calibrate_with for a in ("--data", str(d))] + ["--data", str(labels)]
    clippings_cli("calibrate", args.model, *calibrate_on, "--splits", "train,val", "--out", str(calibrated))
    models = {"before": args.model, "after": str(model), "recalibrated": str(calibrated)}
    on_labels = {k: scores(labels, m) for k, m in models.items()}
    print(json.dumps(on_labels, indent=1))
    others = {str(d): {k: scores(d, m) for k, m in models.items()} for d in args.eval_also}
    if others:
        print(json.dumps(others, indent=1))
    write_json(results_path(args, "review-labels"), "review_labels",
               {"dataset": str(args.dataset), "model": args.model, "reviews": args.reviews, "epochs": args.epochs,
                "eval_also": [str(d) for d in args.eval_also], "calibrate_with": [str(d) for d in args.calibrate_with]},
               [{"model": args.model, **on_labels["before"]},
                {"model": "fine-tuned on the labels", **on_labels["after"]},
                {"model": "recalibrated on the labels", **on_labels["recalibrated"]}],
               streamed | {"before": on_labels["before"], "after": on_labels["after"],
                           "recalibrated": on_labels["recalibrated"], "other_datasets": others}, info, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
