"""Helpers shared by the delivery tests: configs, dumps, and reading received mail."""

from __future__ import annotations

import json
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner
from conftest import SAMPLES

from digest.cli import main
from digest.config import EmailConfig


def email_config(port: int, **changes: object) -> EmailConfig:
    base = EmailConfig(to=("reader@example.org", "second@example.org"),
                       sender="Paper Digest <digest@example.com>", smtp_host="127.0.0.1",
                       smtp_port=port, security="none", timeout=2, retries=2,
                       retry_delay=0.01)
    return replace(base, **changes)  # type: ignore[arg-type]


def parts(message: EmailMessage) -> list[str]:
    return [p.get_content_type() for p in message.walk()]


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def write_dump(path: Path, papers: list[tuple[str, str]], day: str = "Nov 12") -> Path:
    """A page dump in the Daily Papers text format, as the seeds are."""
    header = ("new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\n"
              f"byAK and the research community\n\n{day}\n\n")
    path.write_text(header + "".join(f"{t}\n\n{a}\n\n" for t, a in papers),
                    encoding="utf-8")
    return path


def write_toml(tmp_path: Path, port: int, **email: object) -> Path:
    settings = {"to": ["reader@example.org"], "from": "digest@example.com",
                "smtp_host": "127.0.0.1", "smtp_port": port, "security": "none",
                "timeout": 2, "retries": 1, "retry_delay": 0.01, **email}
    lines = ["[email]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    path = tmp_path / "digest.toml"
    path.write_text('state_dir = "state"\npage_year = 2024\n' + "\n".join(lines) + "\n",
                    encoding="utf-8")
    return path


def inbox_of(tmp_path: Path, count: int) -> Path:
    """An inbox with the first `count` seed dumps."""
    folder = tmp_path / f"inbox{count}"
    folder.mkdir(exist_ok=True)
    for seed in sorted(SAMPLES.glob("*.txt"))[:count]:
        (folder / seed.name).write_bytes(seed.read_bytes())
    return folder


def cli(toml: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(main, ["--config", str(toml), *args])
    return result.exit_code, result.stdout, result.stderr
