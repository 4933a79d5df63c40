"""docs/topics.md: the public topics as a document for the teams that consume them.

Generated from the catalog and the event schemas (never edited by hand), so the keys,
partitions, retention, event types and field tables it states are the ones in the code. The
prose around them — guarantees, versioning rules, the example consumer — lives in
``payflow.contracts.prose``.
"""

from __future__ import annotations

from typing import Any

from ingest.schema_export import (
    PublicEventType,
    components_schemas,
    envelope_schema,
    public_event_types,
    public_topics,
)
from ingest.topics import CATALOG, DAY_MS, Topic, Visibility
from payflow.contracts import prose

REFS = "#/components/schemas/"


def render() -> str:
    """The whole of docs/topics.md."""
    events = public_event_types()
    schemas = components_schemas(REFS)
    event_models = {event.model.__name__ for event in events}
    objects = {name: s for name, s in schemas.items()
               if name not in event_models and name != "Envelope"}
    parts = [
        prose.HEADER,
        _summary_table(events),
        prose.GUARANTEES,
        "## The envelope\n\n" + prose.ENVELOPE + "\n\n" + _field_table(envelope_schema()),
        prose.VERSIONING,
        *(_topic_section(topic, events, schemas) for topic in public_topics()),
        "## Objects\n\nThe objects events carry in `data`, and the objects inside them.",
        *(f"### {name}\n\n{_object_intro(schema)}{_field_table(schema)}"
          for name, schema in sorted(objects.items())),
        prose.CONSUMING,
        _internal_topics(),
    ]
    return "\n\n".join(part.strip() for part in parts) + "\n"


def _summary_table(events: tuple[PublicEventType, ...]) -> str:
    rows = ["| topic | key: ordered per | partitions | retention | cleanup | event types |",
            "|---|---|---|---|---|---|"]
    for topic in public_topics():
        types = ", ".join(f"`{e.type_name}`" for e in events if e.topic == topic)
        rows.append(f"| [`{topic.name}`](#{_anchor(topic.name)}) | {topic.key} | "
                    f"{topic.partitions} | {_retention(topic)} | {_cleanup(topic)} | {types} |")
    return "\n".join(rows)


def _topic_section(topic: Topic, events: tuple[PublicEventType, ...],
                   schemas: dict[str, Any]) -> str:
    own = [e for e in events if e.topic == topic]
    lines = [
        f"## {topic.name}", "",
        topic.description, "",
        f"- **Key**: the {topic.key}. Messages with the same key are in one partition, in the "
        f"order they happened: ordered per {topic.key}, not across keys.",
        f"- **Partitions**: {topic.partitions} (may grow; rely on the key, never on a "
        f"partition number).",
        f"- **Retention**: {_retention(topic)}; cleanup policy `{_cleanup(topic)}`.", "",
        "| type | version | meaning | `data` | schema |",
        "|---|---|---|---|---|",
    ]
    for event in own:
        data = schemas[event.model.__name__]["properties"]["data"]
        lines.append(f"| `{event.name}` | {event.version} | {_cell(event.summary)} | "
                     f"{_type_of(data)} | [{event.type_name}.json](../{event.schema_path}) |")
    return "\n".join(lines)


def _internal_topics() -> str:
    lines = ["## Internal topics", "",
             "Not a contract: only payflow's own processes read these, and they change with "
             "the code. Do not consume them.", ""]
    lines += [f"- `{topic.name}`: {topic.description}" for topic in CATALOG
              if topic.visibility is Visibility.INTERNAL]
    return "\n".join(lines)


def _object_intro(schema: dict[str, Any]) -> str:
    description = schema.get("description")
    return f"{' '.join(str(description).split())}\n\n" if description else ""


def _field_table(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    rows = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        default = f" Default `{_json(prop['default'])}`." if "default" in prop else ""
        description = " ".join(str(prop.get("description", "")).split()) + default
        rows.append(f"| `{name}` | {_type_of(prop)} | {'yes' if name in required else 'no'} | "
                    f"{_cell(description.strip())} |")
    return "\n".join(rows)


def _type_of(prop: dict[str, Any]) -> str:
    """A short, linked description of a property's type, for a table cell."""
    if "$ref" in prop:
        name = str(prop["$ref"]).rsplit("/", 1)[1]
        return f"[{name}](#{_anchor(name)})"
    if "anyOf" in prop:
        return " or ".join(_type_of(alternative) for alternative in prop["anyOf"])
    if "const" in prop:
        return f"`{_json(prop['const'])}`"
    if "enum" in prop:
        return "one of " + ", ".join(f"`{_json(value)}`" for value in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"array of {_type_of(prop.get('items', {}))}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"map of string to {_type_of(prop['additionalProperties'])}"
    return str(kind) + _constraints(prop)


def _constraints(prop: dict[str, Any]) -> str:
    notes = []
    if "format" in prop:
        notes.append(str(prop["format"]))
    if "pattern" in prop:
        notes.append(f"`{prop['pattern']}`")
    if "minimum" in prop or "maximum" in prop:
        notes.append(f"{prop.get('minimum', '')}…{prop.get('maximum', '')}")
    if "maxLength" in prop:
        notes.append(f"≤ {prop['maxLength']} chars")
    return f" ({', '.join(notes)})" if notes else ""


def _retention(topic: Topic) -> str:
    if topic.retention_ms < 0:
        return "forever"
    days = topic.retention_ms / DAY_MS
    return f"{days:g} days"


def _cleanup(topic: Topic) -> str:
    return "compact" if topic.compacted else "delete"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than - and _ dropped."""
    return "".join(c for c in heading.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
