"""Regenerate tests/data/caniemail.json from the caniemail npm package's data file.

    npm pack caniemail && tar xzf caniemail-*.tgz
    python tests/data/caniemail_subset.py package/data/caniemail.json

Keeps, for each CSS and HTML feature, the latest support status of each platform of the
four clients the email must work in (MIT-licensed data from caniemail.com).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CLIENTS = ("gmail", "apple-mail", "yahoo", "fastmail")


def subset(data: dict) -> dict:
    features = {}
    for feature in data["data"]:
        if not feature["slug"].startswith(("css-", "html-")):
            continue
        features[feature["slug"]] = {
            client: {platform: list(versions.values())[-1].split()[0]
                     for platform, versions in feature["stats"].get(client, {}).items()}
            for client in CLIENTS}
    return {"source": "npm caniemail, data/caniemail.json (MIT, caniemail.com)",
            "last_update_date": data["last_update_date"], "features": features}


if __name__ == "__main__":
    source = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = Path(__file__).with_name("caniemail.json")
    kept = subset(source)
    # One feature a line: a refresh shows up in review as a readable diff.
    lines = [f"{json.dumps(slug)}: {json.dumps(stats, sort_keys=True)}"
             for slug, stats in sorted(kept["features"].items())]
    out.write_text(
        f'{{"source": {json.dumps(kept["source"])},\n'
        f'"last_update_date": {json.dumps(kept["last_update_date"])},\n'
        '"features": {\n' + ",\n".join(lines) + "\n}}\n", encoding="utf-8")
