"""Yes or no: 'yeah sure' -> True, 'no, make it Wednesday' -> False, 'not sure' -> None."""

from __future__ import annotations

from app.brain.normalize.text import Tok, match_phrase, phrase_index, tokenize

_YES = """yes|yeah|yea|yah|ya|yep|yup|yes please|yeah please|sure|sure thing|for sure|correct|that's correct|that is correct|
thats correct|that's right|that is right|thats right|right|sounds good|sounds great|sounds perfect|sounds fine|
that sounds good|that sounds great|that sounds fine|please do|go ahead|go for it|absolutely|definitely|of course|ok|okay|
o k|alright|all right|perfect|great|fine|that's fine|that's great|that's perfect|that works|works for me|that'd be great|
do it|book it|affirmative|uh huh|mhm|mm hmm|mhmm|i do|it is|exactly|indeed|you got it|confirm|confirmed|i think so|
lovely|cool|yes it is|yes that's right|yes that's correct|that's it|that is it|you bet|certainly|good""".replace("\n", "")
_NO = """no|nope|nah|naw|no thanks|no thank you|not really|that's wrong|that is wrong|thats wrong|that's not right|
that is not right|that's not correct|that is not correct|that isn't right|that isn't correct|not right|not correct|
incorrect|wrong|negative|not quite|i don't think so|don't|do not|no way|never mind|nevermind|not at all|not yet|
please don't|don't do that|no it's not|no that's wrong|not exactly|cancel that""".replace("\n", "")
_UNSURE = "not sure|i'm not sure|im not sure|i don't know|i dont know|dunno|maybe|no idea|not certain"
_PHRASES = phrase_index([p for p in (_YES + "|" + _NO + "|" + _UNSURE).split("|") if p])
_VALUE: dict[tuple[str, ...], bool | None] = {}
for _group, _val in ((_YES, True), (_NO, False), (_UNSURE, None)):
    for _p in _group.split("|"):
        if _p:
            _VALUE[tuple(_p.split())] = _val
_LEAD = frozenset({"um", "umm", "uh", "uhh", "er", "erm", "ah", "oh", "well", "so", "hmm", "hm", "actually", "and", "but", "i", "said", "mean"})
_STRONG = {"yes": True, "yeah": True, "yep": True, "yup": True, "correct": True, "no": False, "nope": False, "incorrect": False}
_KEYPAD = {"1": True, "2": False}


def match_yes_no(toks: tuple[Tok, ...], lo: int = 0, hi: int | None = None) -> tuple[bool | None, int, int] | None:
    """(answer, first token, token after) for the answer at the start of toks[lo:hi], after filler."""
    hi = len(toks) if hi is None else hi
    i = lo
    while i < hi and toks[i].text in _LEAD and not _starts(toks, i, hi):
        i += 1
    if i < hi and hi - i == 1 and toks[i].text in _KEYPAD and lo == 0 and hi == len(toks):
        return _KEYPAD[toks[i].text], i, i + 1
    j = match_phrase(toks, i, hi, _PHRASES)
    if j > i:
        return _VALUE[tuple(t.text for t in toks[i:j])], i, j
    if hi - lo <= 6:
        hits = {(_STRONG[t.text], k) for k, t in enumerate(toks[lo:hi], lo) if t.text in _STRONG}
        if hits and len({v for v, _ in hits}) == 1:
            value, k = max(hits, key=lambda h: h[1])
            return value, k, k + 1
    return None


def _starts(toks: tuple[Tok, ...], i: int, hi: int) -> bool:
    return match_phrase(toks, i, hi, _PHRASES) > i


def classify_yes_no(text: str) -> bool | None:
    """True for 'yes', 'yeah', 'sure', "that's right", 'go ahead', 'ok', '1'; False for 'no', 'nope',
    'not really', "that's wrong", 'no thanks', 'no, make it Wednesday', '2'; otherwise None."""
    got = match_yes_no(tokenize(text))
    return got[0] if got else None
