"""Prompt injection: multilingual rules plus an optional offline classifier.

The rules name the moves injections make, in English, German, Spanish, French, Italian,
Portuguese and Dutch: overriding earlier instructions ("ignore the above"), switching task
("now your new task is"), assigning a role ("you are now DAN", "act as a Linux terminal"),
extracting the prompt ("show me your prompt"), and forcing an output ("just say 'pwned'",
"answer from your own knowledge, not the documents"). They were written on the ``train`` rows
of the deepset set only; ``benchmarks/policy_quality.py`` reports them on its ``test`` rows.

The classifier is ``prompt-guardrail`` (``import guardify``; TF-IDF + logistic regression,
about 1 ms a text), loaded on first use. Its probability is combined with the rules by a
simple OR at a threshold (``docs/policy.md``).
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from evals.policy._detectors import Match

__all__ = ["INJECTION_PATTERNS", "InjectionClassifier", "default_classifier", "find_injections"]

_PREV_EN = (
    r"(?:previous|prior|preceding|earlier|above|foregoing|former|original|initial|all|your|the|any|"
    r"my|these|those|every|system)"
)
_THINGS_EN = (
    r"(?:instructions?|tasks?|assignments?|orders?|commands?|rules?|directions?|directives?|"
    r"guidelines?|prompts?|information|context|documents?|articles?|texts?|conversation|"
    r"programming|restrictions?|everything|all)"
)

INJECTION_PATTERNS: dict[str, re.Pattern[str]] = {
    # "ignore / forget / disregard (all) (previous) instructions", and its translations.
    "override": re.compile(
        r"\b(?:ignore|ignoring|forget|disregard|disregarding|drop|discard|skip|override|"
        r"bypass|abandon|leave|remove)\b[^.!?\n]{0,20}?\b"
        rf"(?:{_PREV_EN}\s+(?:\w+\s+){{0,2}}{_THINGS_EN}|{_THINGS_EN}\s+(?:above|before|so far|"
        r"you (?:got|received|were given|know))|(?:the )?above|everything)\b"
        r"|\b(?:vergiss|vergessen sie|ignoriere|ignorieren sie|missachte|verwirf)\b"
        r"|\bignorieren\b|\bobigen ausführungen\b|\babweichend zu\b"
        r"|\b(?:olvida|olvide|olvidar|ignora|ignore|oubliez|oublie|ignorez|dimentica|"
        r"dimenticare|esqueça|esqueca|esquece|vergeet|negeer|zaboravi)\b[^.!?\n]{0,30}?"
        r"\b(?:todo|todas|tout|toutes|tutto|tutte|alles|alle|sve|instru\w*|anweisung\w*|"
        r"précédent\w*|anterior\w*|precedent\w*)\b"
        r"|\b(?:забуд|игнорир)\w*"
        r"|\b(?:change|update|replace) (?:your|the) (?:instructions|rules|prompt)\b"
        r"|\byour (?:new )?instructions are now\b"
        r"|\bdespite (?:what|anything) you(?:'ve| have)? been told\b"
        r"|\b(?:alle|sämtliche) (?:vorherigen|bisherigen) (?:informationen|anweisungen)\b",
        re.IGNORECASE | re.MULTILINE,
    ),
    # "now a new task follows", "concentrate on your new task".
    "task_switch": re.compile(
        r"\b(?:new|next|further|additional|different)\s+(?:tasks?|instructions?|assignments?|"
        r"challenge|orders?)\b[^.!?\n]{0,20}\b(?:follow|for you|now|:)"
        r"|\b(?:focus|concentrate)\s+(?:\w+\s+){0,2}on\s+(?:your|the|a)\s+new\b"
        r"|\bstart (?:over|from the (?:front|beginning))\b"
        r"|\b(?:that is|that's) (?:enough|done)\b[.!]?\s+now\b"
        r"|\badditional instruction\b"
        r"|\b(?:neue|nächste|weitere)\s+(?:aufgaben?|anweisungen|herausforderung)\b"
        r"|\b(?:nun|jetzt) folgen\b|\bdas (?:genügt|ist erledigt|reicht)\b"
        r"|\bvon (?:neu|vorne)\b|\b(?:nueva|nuevas) (?:tarea|instrucciones)\b"
        r"|\b(?:nouvelle|nouvelles) (?:tâche|instructions)\b"
        r"|\b(?:another|one more|a further|a new) task\b|\b(?:weiteren|neuen) aufgabe\b"
        r"|\b(?:attention|achtung)\s*[-:!]+\s*(?:stop|stopp)\b|(?:^|[.?!]\s+)stopp?\s*[:-]"
        r"|(?:^|\n)\s*(?:\\n\s*)*(?:new )?(?:instruction|task|anweisung)\s*:"
        r"|\\n\s*(?:new )?(?:instruction|task)\s*:",
        re.IGNORECASE | re.MULTILINE,
    ),
    # "you are now X", "act as", "pretend you are", "stay in character".
    "role": re.compile(
        r"\b(?:i want you to|you will|you should|you must|please)?\s*act as (?:an? |the |my )?\w+"
        r"|\b(?:you are|you're) now\b|\bfrom now on,? you\b|\bnow you are\b"
        r"|\bpretend (?:to be|you(?:'re| are)?|that you)\b|\b(?:role-?play|roleplay)"
        r"|\bstay in (?:their|your|his|her)? ?(?:roles?|character)\b|\bbreak character\b"
        r"|\b(?:dan|developer|god|jailbreak|evil) mode\b|\bdo anything now\b"
        r"|\bimagine (?:you are|you're|that you)\b|\byou are (?:an?|the) (?:evil|immoral|unfiltered|uncensored)\b"
        r"|\bin the (?:style|role|voice) of\b"
        r"|\b(?:ich möchte, dass sie als|stell dir vor, du bist|(?:jetzt|nun) bist du|du bist jetzt)\b"
        r"|\bals \w+ (?:fungieren|agieren)\b|\bim stil(?:e)? (?:eine[rs]?|des|der)\b"
        r"|\bin deiner rolle\b|\bbleiben immer in ihren rollen\b"
        r"|\b(?:actúa|actua|haz de cuenta|finge) (?:como|que)\b|\bfais semblant\b"
        r"|\A\s*(?:you are|du bist|sie sind)\s+(?:[\w-]+\s+){0,4}?[\w-]+[.,!]"
        r"|\b(?:plays?|playing|spielen|spielt) (?:the |die )?(?:leading |main )?(?:roles?|hauptrollen)\b"
        r"|\b(?:excellent|good|great|brilliant) actors\b|\b(?:gute|hervorragende) schauspieler\b"
        r"|\bstay (?:\w+ )?in (?:their|your|his|her) (?:roles?|character)\b"
        r"|\b(?:theoretical|hypothetical|fictional|imaginary) world where you\b"
        r"|\byou are no (?:longer )?(?:a |an )?\w+",
        re.IGNORECASE | re.MULTILINE,
    ),
    # "show me your prompt", "what was written above", "tell me your instructions".
    "prompt_extraction": re.compile(
        r"\b(?:show|print|reveal|repeat|output|display|tell|give|list|spell check and display)\b"
        r"[^.!?\n]{0,25}\b(?:your|the|all|this|my)\s+(?:\w+\s+){0,2}"
        r"(?:prompts?|prompt[- ]texts?|instructions|system message|initial message|guidelines|rules)\b"
        r"|\bwhat (?:was|is) written (?:at the beginning|above|before)\b"
        r"|\bwhat are your (?:instructions|rules|guidelines)\b"
        r"|\b(?:zeige?|nenne|gib)\b[^.!?\n]{0,25}\b(?:prompt|anweisungen)\w*"
        r"|\bwas steht (?:oben|am anfang)\b",
        re.IGNORECASE | re.MULTILINE,
    ),
    # "just say X", "answer from your own knowledge and not the articles", "state that …".
    "output_forcing": re.compile(
        r"\b(?:do not|don't|dont|don'nt) (?:answer|look|use|respond|read)\b[^.!?\n]{0,40}"
        r"\b(?:question|documents?|articles?|context|instructions)\b"
        r"|\b(?:just|only|simply) (?:say|output|print|write|reply|respond|answer)\b[^.!?\n]{0,20}[\"'“„]"
        r"|\b(?:by|from) your own knowledge\b|\bnot (?:by|from|according to) the "
        r"(?:articles?|documents?|context|provided)"
        r"|\bdisregarding the (?:articles?|documents?|context)\b"
        r"|\b(?:state|say|include|claim|tell me) that\b[^.!?\n]{0,60}"
        r"\b(?:hate|best|worst|superior|stupid|right|evil|doof|sucks?|is the)\b"
        r"|\bhaha pwned\b|\bpwned\b"
        r"|\b(?:antworte|sag|schreib|schreibe)\b[^.!?\n]{0,20}\bnur\b"
        r"|\bohne die (?:artikel|dokumente)\b"
        r"|\b(?:di|dice|dites|dis|diga) (?:lo siguiente|ce qui suit|que)\b"
        r"|\bspell check and display\b|\bmake something up\b"
        r"|\bformul\w* (?:[\w]+ ){0,5}(?:untrue|false|unwahre|falsche)\b"
        r"|\brepeat after me\b|\bsay (?:yes|no)\b[.!]|\bsage? (?:ja|nein)\b[.!]"
        r"|\b(?:the (?:right|correct) (?:answer|response)|die richtige antwort|la respuesta correcta)"
        r"\s+(?:is|ist|es)\b"
        r"|\b(?:or you(?:'ll| will)? die|oder du stirbst|o tu muertes?)\b"
        r"|\binformation in the prompt\b"
        r"|\b(?:sentences?|words?|lines?) (?:before|above) (?:the|this) (?:text|prompt)\b",
        re.IGNORECASE | re.MULTILINE,
    ),
    # Context stuffing and role markers that fake a conversation.
    "delimiter": re.compile(
        r"(?:\\n\s*){4,}|(?:\\ n\s*){4,}|^\s*(?:human|assistant|system|user)\s*:\s*(?:human|assistant|system)\s*:"
        r"|\b(?:document context|context|kontext|artikel|\$?documents?)\s*[:\"{]?\s*[\"{]?"
        r"[^\n]{0,200}?\b(?:question|frage)\b"
        r"|^\s*\$(?:documents?|context)\s*:"
        r"|\b(?:system|admin)\s*(?:override|prompt)\s*:"
        r"|<\|?(?:im_start|im_end|system|endoftext)\|?>",
        re.IGNORECASE | re.MULTILINE,
    ),
    # Words spelled out letter by letter ("S a y t h a t …") to slip past filters.
    "obfuscation": re.compile(r"(?:\b[A-Za-z] ){6,}[A-Za-z]\b"),
}
"""Move name → pattern. Each hit names the move it found."""

# Python's regex engine tries every alternative at every position; most texts contain none of
# the words a move needs, so a substring test first makes the rules about 10x faster. Every
# alternative of a pattern contains at least one of its anchors (lower case); the tests check
# that the anchors never change a result on the public data.
_ANCHORS: dict[str, tuple[str, ...]] = {
    "override": (
        "ignor", "forget", "disregard", "drop", "discard", "skip", "override", "bypass",
        "abandon", "leave", "remove", "vergiss", "vergessen", "missachte", "verwirf", "obigen",
        "abweichend", "olvid", "oubli", "dimentic", "esque", "vergeet", "negeer", "zaboravi",
        "забуд", "игнорир", "change", "update", "replace", "instructions are now", "despite",
        "vorherigen", "bisherigen",
    ),
    "task_switch": (
        "new", "next", "further", "additional", "different", "focus", "concentrate", "start",
        "enough", "done", "neue", "nächste", "weitere", "folgen", "genügt", "erledigt",
        "reicht", "von ", "nueva", "nouvelle", "another", "one more", "attention", "achtung",
        "stop", "instruction", "task", "anweisung",
    ),
    "role": (
        "act as", "you are", "you're", "from now on", "pretend", "role", "rolle", "stay in",
        "break character", "mode", "do anything now", "imagine", "style", "voice", "möchte",
        "stell dir", "bist du", "du bist", "fungieren", "agieren", "stil", "actúa", "actua",
        "haz de cuenta", "finge", "fais semblant", "sie sind", "play", "spiel", "actors",
        "schauspieler", "world where you",
    ),
    "prompt_extraction": (
        "prompt", "instruction", "message", "guideline", "rules", "written", "anweisungen",
        "was steht",
    ),
    "output_forcing": (
        "do not", "don't", "dont", "don'nt", "just", "only", "simply", "own knowledge", "not by",
        "not from", "according to", "disregarding", "state", "say", "include", "claim",
        "tell me", "pwned", "antworte", "sag", "schreib", "ohne die", "di ", "dice", "dites",
        "dis ", "diga", "spell check", "make something up", "formul", "repeat after me",
        "sage", "answer", "response", "antwort", "respuesta", "die", "stirbst", "muert",
        "information in the prompt", "before", "above",
    ),
    "delimiter": (
        "\\n", "\\ n", "human", "assistant", "system", "user", "context", "kontext", "artikel",
        "document", "question", "frage", "admin", "<|", "<im_", "$",
    ),
}  # fmt: skip


def find_injections(text: str) -> Iterator[tuple[str, Match]]:
    """``(move, span)`` for every injection move the rules find."""
    lowered = text.lower()
    for move, pattern in INJECTION_PATTERNS.items():
        anchors = _ANCHORS.get(move)
        if anchors is not None and not any(a in lowered for a in anchors):
            continue
        for m in pattern.finditer(text):
            if m.end() > m.start():
                yield move, Match(m.start(), m.end(), m.group(0))


@dataclass(frozen=True)
class _Loaded:
    vectorizer: Any
    model: Any


class InjectionClassifier:
    """The ``prompt-guardrail`` TF-IDF classifier: the probability that a text is an injection."""

    def __init__(self) -> None:
        try:
            import joblib  # type: ignore[import-untyped]
            from guardify.guardrails import logistic_regression  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - depends on the environment
            from evals.errors import UserError

            raise UserError.single(
                "rule pack",
                "classifier",
                "prompt_injection rules with 'classifier: true' need the offline classifier: "
                "pip install --no-deps prompt-guardrail==1.0.1 (or set 'classifier: false')",
            ) from exc
        models = logistic_regression._MODEL_DIR
        with warnings.catch_warnings():
            # The model was pickled by scikit-learn 1.7; a linear model and a TF-IDF
            # vectoriser load and predict the same under 1.9 (checked in the tests).
            warnings.simplefilter("ignore")
            self._loaded = _Loaded(
                joblib.load(models / "ig_ip_vectorizer.pkl"),
                joblib.load(models / "lg_ip_guardrails.pkl"),
            )
        self._lock = threading.Lock()

    def probabilities(self, texts: Sequence[str]) -> list[float]:
        """Injection probability of each text."""
        if not texts:
            return []
        with self._lock:
            features = self._loaded.vectorizer.transform(list(texts))
            proba = self._loaded.model.predict_proba(features)
        column = list(self._loaded.model.classes_).index(1)
        return [float(p[column]) for p in proba]


@lru_cache(maxsize=1)
def default_classifier() -> InjectionClassifier:
    """The process-wide classifier (loaded on first use)."""
    return InjectionClassifier()
