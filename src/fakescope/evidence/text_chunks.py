"""The ``text_chunks`` reader: text that generators embed, above all their generation parameters.

Sources: PNG ``tEXt``/``zTXt``/``iTXt`` chunks (decompressed by Pillow, within its size
limits), the JPEG/GIF comment, and EXIF ``UserComment``/``ImageDescription`` (where the
AUTOMATIC1111 web UI writes its parameters in JPEG and WebP files).

Generator markers, each tied to the tool whose format it is (:data:`GENERATOR_KEYS`):

- ``parameters`` holding the AUTOMATIC1111 format (a prompt, then ``Steps: N, Sampler: ...``),
  written by the AUTOMATIC1111 web UI and the tools that copy its format (Forge, SD.Next,
  Fooocus' A1111 mode); or a JSON object with sampler settings (Fooocus, SwarmUI);
- ``prompt`` (an API graph of nodes with ``class_type``) and ``workflow`` (the editor's graph):
  ComfyUI;
- keys only one tool writes: ``invokeai_metadata``, ``invokeai_graph``, ``sd-metadata``,
  ``Dream`` (InvokeAI), ``fooocus_scheme`` (Fooocus), ``sui_image_params`` (SwarmUI);
- ``Software``/``Source`` text naming a known generator (NovelAI writes ``Software: NovelAI``).

A key whose value does not have its tool's format (a ``prompt`` chunk that is not a graph) is
listed but is not a marker: the rule that turns markers into a verdict must not fire on a
coincidental key name.
"""

from __future__ import annotations

import json
import re
from typing import Any

from PIL import ExifTags

from fakescope.evidence.software import marker, match_generator
from fakescope.evidence.source import EvidenceSource, printable

#: Text keys only one generator family writes: presence is the marker.
GENERATOR_KEYS: dict[str, str] = {
    "invokeai_metadata": "InvokeAI",
    "invokeai_graph": "InvokeAI",
    "sd-metadata": "InvokeAI",
    "Dream": "InvokeAI",
    "fooocus_scheme": "Fooocus",
    "sui_image_params": "SwarmUI",
}
#: Keys holding a software name, matched against the known generators.
SOFTWARE_KEYS = ("Software", "Source", "Generator", "Creator Tool")
MAX_LISTED_TEXTS = 20
_TEXT_PREVIEW = 300
# The AUTOMATIC1111 settings line: "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, ...".
_A1111_STEPS = re.compile(r"(?m)^Steps: \d+,")
_A1111_FIELD = re.compile(r'\s*([A-Za-z][\w \-/]*?): ("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)')
_A1111_SETTINGS = ("Sampler", "CFG scale", "Seed", "Size", "Model", "Model hash")
_JSON_SETTINGS = {"steps", "sampler", "sampler_name", "seed", "cfg_scale", "cfg", "scheduler"}
_USER_COMMENT_CODES = {
    b"ASCII\x00\x00\x00": "ascii",
    b"UNICODE\x00": "utf-16",
    b"JIS\x00\x00\x00\x00\x00": "shift_jis",
}


def read_text_chunks(source: EvidenceSource) -> dict[str, Any] | None:
    texts = collect_texts(source)
    if not texts:
        return None
    generator: list[dict[str, str]] = []
    parameters: dict[str, Any] | None = None
    for key, value in texts.items():
        name = key.split(":", 1)[1]
        if name in GENERATOR_KEYS:
            generator.append(marker(GENERATOR_KEYS[name], key, "key written only by this tool"))
        if name in SOFTWARE_KEYS and (tool := match_generator(value)):
            generator.append(marker(tool, key, printable(value, 120)))
        if name == "prompt" and _is_comfy_graph(value, "prompt"):
            generator.append(marker("ComfyUI", key, "node graph with class_type entries"))
        if name == "workflow" and _is_comfy_graph(value, "workflow"):
            generator.append(marker("ComfyUI", key, "editor workflow with nodes"))
        if parameters is None and (parsed := parse_a1111(value)) is not None:
            parameters = parsed
            generator.append(marker("AUTOMATIC1111-format parameters", key, _settings_line(parsed)))
        elif name in {"parameters", "Comment"} and (settings := _json_settings(value)):
            generator.append(marker("generation settings (JSON)", key, settings))
    report: dict[str, Any] = {
        "keys": list(texts),
        "texts": {
            key: printable(v, _TEXT_PREVIEW) for key, v in list(texts.items())[:MAX_LISTED_TEXTS]
        },
        "parameters": parameters,
        "generator": _unique(generator),
        "editing": [],
    }
    return report


def collect_texts(source: EvidenceSource) -> dict[str, str]:
    """Every embedded text, keyed ``<where>:<name>`` (``png:parameters``, ``exif:UserComment``)."""
    texts = {f"png:{key}": value for key, value in source.metadata.png_text.items() if value}
    comment = source.pil.info.get("comment")
    if comment:
        texts["comment:comment"] = printable(comment, 1 << 20)
    exif = source.exif
    if exif:
        description = exif.get(ExifTags.Base.ImageDescription)
        if description and printable(description):
            texts["exif:ImageDescription"] = printable(description, 1 << 20)
        try:
            user_comment = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.UserComment)
        except (OSError, SyntaxError, ValueError, KeyError, TypeError, EOFError):
            user_comment = None
        decoded = decode_user_comment(user_comment)
        if decoded:
            texts["exif:UserComment"] = decoded
    return texts


def decode_user_comment(value: Any) -> str | None:
    """EXIF ``UserComment``: an 8-byte character code, then the text (EXIF 2.32, 4.6.5)."""
    if isinstance(value, str):
        return value.strip("\x00 ") or None
    if not isinstance(value, bytes | bytearray) or len(value) <= 8:
        return None
    code, body = bytes(value[:8]), bytes(value[8:])
    encoding = _USER_COMMENT_CODES.get(code)
    if encoding == "utf-16":
        # The byte order is not stated; writers use big-endian (piexif, A1111) or the TIFF's.
        # The order that yields more ASCII characters is the right one for Latin text.
        candidates = [body.decode(enc, errors="replace") for enc in ("utf-16-be", "utf-16-le")]
        text = max(candidates, key=lambda t: sum(ch.isascii() for ch in t))
    elif encoding is not None:
        text = body.decode(encoding, errors="replace")
    else:
        text = body.decode("utf-8", errors="replace")
    text = text.strip("\x00 \n")
    return text or None


def parse_a1111(text: str) -> dict[str, Any] | None:
    """The AUTOMATIC1111 parameters format, or None when ``text`` is not in it.

    Prompt lines, an optional ``Negative prompt:`` line, then one settings line whose first
    field is ``Steps``. At least one other known setting must follow, so a caption that
    happens to start a line with "Steps:" is not taken for generator output.
    """
    match = _A1111_STEPS.search(text)
    if match is None:
        return None
    start = match.start()
    settings_line = text[start:].split("\n", 1)[0]
    settings = {
        key.strip(): value.strip().strip('"') for key, value in _A1111_FIELD.findall(settings_line)
    }
    if not any(name in settings for name in _A1111_SETTINGS):
        return None
    head = text[:start].rstrip("\n")
    prompt, _, negative = head.partition("Negative prompt:")
    return {
        "prompt": printable(prompt, _TEXT_PREVIEW),
        "negative_prompt": printable(negative, _TEXT_PREVIEW) or None,
        "settings": {key: printable(value, 120) for key, value in list(settings.items())[:30]},
    }


def _settings_line(parsed: dict[str, Any]) -> str:
    settings = parsed["settings"]
    shown = [f"{key}: {settings[key]}" for key in ("Steps", *_A1111_SETTINGS) if key in settings]
    return ", ".join(shown[:5])


def _load_json(text: str) -> Any:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _is_comfy_graph(text: str, kind: str) -> bool:
    graph = _load_json(text)
    if not isinstance(graph, dict):
        return False
    if kind == "workflow":
        return isinstance(graph.get("nodes"), list)
    return any(isinstance(node, dict) and "class_type" in node for node in graph.values())


def _json_settings(text: str) -> str | None:
    """The sampler settings a JSON object carries (``steps, sampler, seed``), or None."""
    data = _load_json(text)
    if not isinstance(data, dict):
        return None
    found = sorted(key for key in data if isinstance(key, str) and key.lower() in _JSON_SETTINGS)
    return ", ".join(found) if len(found) >= 2 else None


def _unique(markers: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for item in markers:
        key = (item["tool"], item["where"])
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique
