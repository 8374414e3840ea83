"""Copies of generated datasets with one thing wrong, for the commands' error paths."""

import json


def broken_copy(dataset, dst, split_of_broken: str):
    """A copy of dataset whose first record of split_of_broken has its image cut short, as a
    failed copy leaves it; -> the broken record's line in records.jsonl and its image's name."""
    lines = (dataset / "records.jsonl").read_text().splitlines()
    dst.mkdir()
    (dst / "images").symlink_to((dataset / "images").resolve())
    line = next(i for i, x in enumerate(lines, 1) if json.loads(x)["split"] == split_of_broken)
    obj = json.loads(lines[line - 1])
    src = dataset / obj["image"]
    name = "cut" + src.suffix
    (dst / name).write_bytes(src.read_bytes()[:200])
    lines[line - 1] = json.dumps(obj | {"image": name})
    (dst / "records.jsonl").write_text("\n".join(lines) + "\n")
    return line, name

