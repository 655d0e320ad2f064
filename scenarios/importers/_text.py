"""Text helpers of the importers: one-line text, sentences, cue words, language, age and sex,
nested source data as statements, and whether a text names a diagnosis.

Everything here is deterministic: the same input gives the same output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

Sex = Literal["female", "male", "other"]


def one_line(text: str) -> str:
    return " ".join(text.split())


def shorten(text: str, width: int = 70) -> str:
    """One line of at most ``width`` characters, cut at a word boundary."""
    t = one_line(text)
    if len(t) <= width:
        return t
    cut = t[: width - 1].rsplit(" ", 1)[0] if " " in t[: width - 1] else t[: width - 1]
    return cut.rstrip(" ,;:.-") + "…"


def with_stop(text: str) -> str:
    """The text with a full stop added if it ends without sentence punctuation."""
    t = text.strip()
    return t if not t or t[-1] in ".!?。！？…\"')”" else t + "."


_ABBREV = {"dr", "mr", "mrs", "ms", "vs", "e.g", "i.e", "etc", "approx", "st", "no", "fig"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences (and lines); drop pieces without letters or digits."""
    out: list[str] = []
    for para in re.split(r"\n+", text):
        pieces = [p.strip() for p in _SENTENCE_END.split(para) if p and p.strip()]
        merged: list[str] = []
        for p in pieces:
            if merged:
                prev = merged[-1]
                last = prev.rsplit(" ", 1)[-1].rstrip(".").lower()
                if (
                    re.fullmatch(r"\d+\.|[-*•]", prev)  # list numbering or bullet alone
                    or last in _ABBREV
                    or re.fullmatch(r"[a-z]", last)  # an initial, e.g. "C. difficile"
                ):
                    merged[-1] = f"{prev} {p}"
                    continue
            merged.append(p)
        out.extend(m for m in merged if re.search(r"\w", m))
    return out


_STOPWORDS = frozenset(
    """
    about above after again against also although among another anything are around because
    been before being below between both cannot could does doing done down during each either
    else even ever every from further have having here hers herself himself into itself just
    know like made make many maybe might more most much must myself near need never none only
    other ought ours ourselves over same says should since some still such than that their
    theirs them themselves then there these they thing things this those though through under
    until very want were what whatever when where whether which while whom whose will with
    within without would your yours yourself yourselves really please thanks thank okay
    getting going sometimes something someone able tell said keep kind sure last feel feels
    feeling felt think thought seems seem looks help
    patient patients patient's reports reported reporting denies denied presents presented
    presenting complains complaints complaint noted note shows showed found history year years
    old year-old month months week weeks days hours today yesterday currently recently recent
    the and for was had has his her him she but not are any all can did its who why how you
    take taking takes needed despite affect experiencing especially significant normal shown
    past known first vital signs examination test tests result results findings finding
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]", re.UNICODE)


def keywords(text: str, limit: int = 6) -> list[str]:
    """Salient cue words of a fact: content words and short acronyms (CT, HIV), in order."""
    out: list[str] = []
    for m in _WORD.finditer(text):
        w = m.group(0)
        word = re.sub(r"['’]s$", "", w)
        low = word.lower()
        if word.isupper() and 2 <= len(word) <= 5:
            key = word  # acronym
        elif len(low) >= 4 and low not in _STOPWORDS:
            key = low
        else:
            continue
        if key not in out:
            out.append(key)
        if len(out) >= limit:
            break
    return out


_LATIN_MARKERS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and is are to of in for with my i it that have what you this was me not",
        "es": "el los las y con una es del al pero qué cómo está tengo estoy muy también sobre",
        "pt": "o os e em uma é do da dos das não você isso mas também meu minha sei estou",
        "fr": "le les et est je une des du pas avec pour mon ma vous très j'ai suis",
        "de": "der die das und ist ich nicht mit ein eine mein meine sie auch habe",
    }.items()
}


def detect_language(text: str) -> str:
    """A best-effort language code: Chinese/Japanese/Korean by script, a few Latin-script
    languages by common words, else English."""
    if re.search(r"[\u3040-\u30ff]", text):
        return "ja"
    if re.search(r"[\uac00-\ud7af]", text):
        return "ko"
    if re.search(r"[\u3400-\u4dbf\u4e00-\u9fff]", text):
        return "zh"
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text.lower())
    scores = {lang: sum(w in marks for w in words) for lang, marks in _LATIN_MARKERS.items()}
    best = max(scores, key=lambda k: scores[k])
    if best != "en" and scores[best] >= 3 and scores[best] > 1.5 * scores["en"]:
        return best
    return "en"


# --- age and sex -----------------------------------------------------------------------


def parse_age(text: str) -> int | None:
    """Age in whole years from '35-year-old female', '22 years', '8-month-old', 'Newborn'."""
    t = text.lower()
    m = re.search(r"(\d{1,3})\s*-?\s*(?:years?|yrs?|y/o)\b", t)
    if m:
        age = int(m.group(1))
        return age if age <= 120 else None
    if re.search(r"\b(newborn|neonate|neonatal)\b", t):
        return 0
    m = re.search(r"(\d{1,3})\s*-?\s*(months?|weeks?|days?|hours?)\b", t)
    if m:
        return int(m.group(1)) // 12 if m.group(2).startswith("month") else 0
    return None


def parse_sex(text: str) -> Sex | None:
    t = text.lower()
    if re.search(r"\b(female|woman|women|girl|lady|gravida|nulliparous|pregnant)\b", t):
        return "female"
    if re.search(r"\b(male|man|men|boy|gentleman)\b", t):
        return "male"
    return None


def is_young_child(text: str, age: int | None) -> bool:
    """Whether a parent, not the patient, would be the one talking."""
    if age is not None and age < 12:
        return True
    young = r"\b(newborn|neonate|infant|baby|toddler)\b|\b\d+-(day|week|month)-old\b"
    return bool(re.search(young, text.lower()))


# --- nested source data ----------------------------------------------------------------


def pretty_key(key: str) -> str:
    """'Acetylcholine_Receptor_Antibodies' -> 'Acetylcholine Receptor Antibodies'."""
    return one_line(str(key).replace("_", " "))


_DROP_LEAF = {"findings", "finding", "result", "results", "value"}


def flatten(value: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    """Readable one-line statements from nested dicts and lists: 'A – B: value'."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(v, (*path, pretty_key(k)))
        return
    if isinstance(value, list):
        if all(not isinstance(x, (dict, list)) for x in value):
            items = [scalar_text(x) for x in value if scalar_text(x)]
            if items:
                yield _label(path, "; ".join(items))
            return
        for x in value:
            yield from flatten(x, path)
        return
    text = scalar_text(value)
    if text:
        yield _label(path, text)


def _label(path: tuple[str, ...], text: str) -> str:
    parts = list(path)
    if len(parts) > 1 and parts[-1].lower() in _DROP_LEAF:
        parts.pop()
    return f"{' – '.join(parts)}: {text}" if parts else text


def scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return one_line(str(value))


def _dx_norm(text: str) -> str:
    t = text.replace("’", "'").casefold()
    return one_line(re.sub(r"[^\w']+", " ", t))


def names_diagnosis(text: str, diagnosis: str) -> bool:
    """Whether ``text`` names the diagnosis (ignoring case, punctuation and a parenthesis,
    e.g. 'Progressive multifocal encephalopathy (PML)')."""
    core = _dx_norm(re.sub(r"\s*\([^)]*\)", "", diagnosis))
    return len(core) >= 4 and f" {core} " in f" {_dx_norm(text)} "
