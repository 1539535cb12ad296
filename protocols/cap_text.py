"""Shortening text to a byte budget without breaking a character or a visible symbol.

A Python ``str`` is a sequence of code points, so cutting it can never split a UTF-8
sequence or a UTF-16 surrogate pair: those exist only once the text is encoded, and
the cut is made before encoding, at a code-point index. What a cut *can* break is a
user-perceived character made of several code points (a grapheme cluster, Unicode
UAX #29): "e" + U+0301 would lose its accent, a family emoji joined by ZWJ would fall
apart, a flag (two regional indicators) would become a letter in a box. The standard
library has no grapheme segmentation, so :func:`cut_points` implements the rules that
matter for alert text: never cut before a combining or enclosing mark, a spacing mark,
a zero-width joiner or after one, a variation selector, an emoji skin-tone modifier,
an emoji tag character, a Hangul medial vowel or final consonant jamo, between CR and
LF, or inside a pair of regional indicators. Rarer rules (Indic conjuncts, prepended
concatenation marks) are not followed; cutting there still yields valid text.
"""

from __future__ import annotations

import unicodedata

__all__ = ["cut_points", "fit_text"]

_ZWJ = "\u200d"
_MARK_CATEGORIES = frozenset({"Mn", "Mc", "Me"})
_EXTENDERS = (
    (0xFE00, 0xFE0F),  # variation selectors (emoji / text presentation)
    (0xE0100, 0xE01EF),  # variation selectors supplement
    (0x1F3FB, 0x1F3FF),  # emoji skin-tone modifiers
    (0xE0020, 0xE007F),  # emoji tag sequences (subdivision flags)
    (0x1160, 0x11FF),  # Hangul medial vowels and final consonants
    (0xD7B0, 0xD7FB),  # Hangul jamo extended-B
)
_REGIONAL_INDICATORS = (0x1F1E6, 0x1F1FF)


def _extends(char: str) -> bool:
    """True if ``char`` belongs to the cluster before it."""
    if char == _ZWJ or unicodedata.category(char) in _MARK_CATEGORIES:
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _EXTENDERS)


def _regional(char: str) -> bool:
    return _REGIONAL_INDICATORS[0] <= ord(char) <= _REGIONAL_INDICATORS[1]


def cut_points(text: str) -> list[int]:
    """Indices ``i`` (0 and ``len(text)`` included) where ``text[:i]`` ends on a cluster boundary."""
    points = [0]
    run = 0  # regional indicators in a row before index i
    for i in range(1, len(text)):
        before, char = text[i - 1], text[i]
        run = run + 1 if _regional(before) else 0
        joined = _extends(char) or before == _ZWJ or (before == "\r" and char == "\n")
        if not joined and not (_regional(char) and run % 2 == 1):
            points.append(i)
    if text:
        points.append(len(text))
    return points


def fit_text(text: str, max_bytes: int, encoding: str, marker: str) -> str:
    """``text`` if it encodes to at most ``max_bytes``, else its longest prefix that fits with ``marker`` added.

    The prefix ends on a :func:`cut_points` boundary and loses trailing whitespace before
    the marker. If not even the marker fits, the answer is ``""`` (which still takes bytes
    in an encoding with a byte-order mark, such as ``utf-16``). Encoded length is
    measured by encoding each candidate, so encodings with a byte-order mark or shift
    states are measured right; it grows with the prefix, so a binary search finds the cut.
    """

    def size(candidate: str) -> int:
        return len(candidate.encode(encoding))

    if size(text) <= max_bytes:
        return text
    if size(marker) > max_bytes:
        return ""
    points = cut_points(text)
    low, high = 0, len(points) - 1  # points[low] always fits; points[high] is the whole text, which does not
    while high - low > 1:
        middle = (low + high) // 2
        if size(text[: points[middle]].rstrip() + marker) <= max_bytes:
            low = middle
        else:
            high = middle
    return text[: points[low]].rstrip() + marker
