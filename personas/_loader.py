"""Load the built-in persona library and users' persona folders; sample personas."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from personas._schema import Confusion, Level, Persona, Recall, Speaker, Temperament, Verbosity
from scenarios.yamlio import DataFileError, iter_yaml_files, load_model, read_yaml


def builtin_dir() -> Path:
    return Path(str(resources.files("personas") / "data"))


def load_persona(path: Path) -> Persona:
    return load_model(path, Persona)


class PersonaLibrary:
    """Personas by id, from the built-in library and any extra folders."""

    def __init__(self, personas: dict[str, Persona]) -> None:
        self._by_id = personas

    @classmethod
    def load(cls, extra_dirs: Iterable[Path] = (), *, builtin: bool = True) -> PersonaLibrary:
        roots = ([builtin_dir()] if builtin else []) + [Path(d) for d in extra_dirs]
        by_id: dict[str, Persona] = {}
        where: dict[str, Path] = {}
        for f in iter_yaml_files(roots):
            p = load_persona(f)
            if p.id in by_id:
                raise DataFileError(
                    f, f"duplicate persona id {p.id!r}, also in {where[p.id]}", field="id"
                )
            by_id[p.id] = p
            where[p.id] = f
        return cls(by_id)

    def get(self, persona_id: str) -> Persona:
        if persona_id.startswith("sampled:"):
            seed_text = persona_id.removeprefix("sampled:")
            if not seed_text.lstrip("-").isdigit():
                raise KeyError(
                    f"bad sampled persona {persona_id!r}; use 'sampled:SEED', e.g. sampled:7"
                )
            return sample_persona(int(seed_text))
        try:
            return self._by_id[persona_id]
        except KeyError:
            raise KeyError(
                f"unknown persona id {persona_id!r}; see 'clinsim personas list' "
                "or use 'sampled:SEED'"
            ) from None

    def __iter__(self) -> Iterator[Persona]:
        return iter(sorted(self._by_id.values(), key=lambda p: p.id))

    def __len__(self) -> int:
        return len(self._by_id)


def sample_persona(seed: int) -> Persona:
    """A persona drawn from the axes with ``seed``; the same seed gives the same persona."""
    rng = random.Random(seed)
    temperament = rng.choice(list(Temperament))
    speaker = rng.choices([Speaker.SELF, Speaker.CAREGIVER], weights=[4, 1])[0]
    return Persona(
        id=f"sampled-{seed}",
        name=f"Sampled persona {seed}",
        description="Sampled from the persona axes.",
        temperament=temperament,
        health_literacy=rng.choice(list(Level)),
        verbosity=rng.choice(list(Verbosity)),
        recall=rng.choice(list(Recall)),
        confusion=rng.choices(list(Confusion), weights=[6, 3, 1])[0],
        speaker=speaker,
        caregiver_relation=rng.choice(["daughter", "son", "spouse", "parent"])
        if speaker is Speaker.CAREGIVER
        else None,
        sampled_seed=seed,
    )


@lru_cache(maxsize=1)
def style_phrases() -> dict[str, Any]:
    """Phrases describing each axis value, by language, from ``personas/style.yaml``."""
    path = Path(str(resources.files("personas") / "style.yaml"))
    data, _ = read_yaml(path)
    if not isinstance(data, dict):
        raise DataFileError(path, "expected a mapping of languages")
    return data


def render_style(persona: Persona, language: str = "en") -> list[str]:
    """How this persona talks, as instruction lines for the patient prompt."""
    phrases = style_phrases()
    lang = language.split("-")[0]
    table = phrases.get(lang) or phrases["en"]
    lines = [
        table["temperament"][persona.temperament.value],
        table["health_literacy"][persona.health_literacy.value],
        table["verbosity"][persona.verbosity.value],
        table["recall"][persona.recall.value],
        table["confusion"][persona.confusion.value],
    ]
    if persona.speaker is Speaker.CAREGIVER:
        relation = persona.caregiver_relation or ""
        relation = phrases.get("relations", {}).get(lang, {}).get(relation, relation)
        lines.append(table["caregiver"].format(relation=relation))
    lines.extend(persona.quirks)
    return [line for line in lines if line]
