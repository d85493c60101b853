"""Show the LaTeX of arXiv titles and abstracts as Unicode text: `$|S_i|$` reads `|Sᵢ|`.

arXiv's metadata is LaTeX only in parts: a bare '%' is a percent sign, a '~' often means
"about", and '$' is sometimes a price. So only what TeX authors write as math is read as math
(pandoc's rule: an opening '$' before a non-space, a closing one after a non-space and, unless
the formula has commands or scripts, not before a digit), and anything not understood is kept
as written, never dropped.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

log = logging.getLogger(__name__)

CACHE_SIZE = 8192  # texts kept converted: the titles and abstracts of a big day's papers
MAX_DEPTH = 16  # nested groups and arguments followed; deeper ones are kept as written
MAX_MATH = 1000  # characters of one formula; a longer "formula" is not one
MAX_INDEX = 20  # characters of a root's index (\sqrt[3]{x})
MAX_ACCENTED = 8  # characters under one accent (\overline{AB}); more are kept as written

# Math as TeX authors write it: $…$ (pandoc's rule, so "$5 and $10" stays text), $$…$$, \(…\),
# \[…\]. An escaped dollar (\$) is matched first, so it never opens math. A closing '$' before
# a digit ("$5-$10") closes only math that has commands or scripts ("$\sim$10").
_SEGMENT_RE = re.compile(
    r"\\\$"
    rf"|\$\$(?=\S)((?:[^$\\]|\\.){{1,{MAX_MATH}}}?)(?<=\S)\$\$"
    rf"|\$(?=[^\s$])((?:[^$\\]|\\.){{1,{MAX_MATH}}}?)(?<!\s)\$"
    rf"|\\\((.{{1,{MAX_MATH}}}?)\\\)"
    rf"|\\\[(.{{1,{MAX_MATH}}}?)\\\]",
    re.DOTALL,
)
_MATHY = re.compile(r"[\\^_{]")
_BRACE_RE = re.compile(r"\\.|[{}]", re.DOTALL)  # a brace, or an escaped character to skip
_NAME_RE = re.compile(r"[A-Za-z]+")
_PLAIN_TEXT = re.compile(r"[^\\{}]+")  # runs with nothing to convert in text
_PLAIN_MATH = re.compile(r"[^\\{}^_~]+")  # and in math


def _names(words: str) -> frozenset[str]:
    """Return the names in a string of them separated by spaces."""
    return frozenset(words.split())


_SYMBOLS = dict(
    re.findall(
        r"(\S+) (\S+)",
        """
alpha α beta β gamma γ delta δ epsilon ϵ varepsilon ε zeta ζ eta η theta θ vartheta ϑ iota ι
kappa κ varkappa ϰ lambda λ mu μ nu ν xi ξ omicron ο pi π varpi ϖ rho ρ varrho ϱ sigma σ
varsigma ς tau τ upsilon υ phi ϕ varphi φ chi χ psi ψ omega ω digamma ϝ Gamma Γ Delta Δ
Theta Θ Lambda Λ Xi Ξ Pi Π Sigma Σ Upsilon Υ Phi Φ Psi Ψ Omega Ω
le ≤ leq ≤ ge ≥ geq ≥ leqslant ⩽ geqslant ⩾ ne ≠ neq ≠ approx ≈ sim ∼ simeq ≃ cong ≅ equiv ≡
propto ∝ ll ≪ gg ≫ lesssim ≲ gtrsim ≳ prec ≺ succ ≻ preceq ⪯ succeq ⪰ subset ⊂ supset ⊃
subseteq ⊆ supseteq ⊇ subsetneq ⊊ supsetneq ⊋ in ∈ notin ∉ ni ∋ mid ∣ nmid ∤ parallel ∥
perp ⊥ vdash ⊢ models ⊨ asymp ≍ doteq ≐ triangleq ≜ coloneqq ≔ coloneq ≔
times × div ÷ cdot · pm ± mp ∓ ast ∗ star ⋆ circ ∘ bullet • oplus ⊕ otimes ⊗ ominus ⊖
odot ⊙ cap ∩ cup ∪ wedge ∧ vee ∨ land ∧ lor ∨ setminus ∖ sqcup ⊔ sqcap ⊓ uplus ⊎ dagger †
ddagger ‡ bigcup ⋃ bigcap ⋂ bigoplus ⨁ bigotimes ⨂ bigvee ⋁ bigwedge ⋀ bigsqcup ⨆
sum ∑ prod ∏ coprod ∐ int ∫ iint ∬ iiint ∭ oint ∮
to → rightarrow → leftarrow ← gets ← leftrightarrow ↔ Rightarrow ⇒ Leftarrow ⇐
Leftrightarrow ⇔ implies ⟹ impliedby ⟸ iff ⟺ mapsto ↦ longrightarrow ⟶ longleftarrow ⟵
Longrightarrow ⟹ Longleftarrow ⟸ longmapsto ⟼ uparrow ↑ downarrow ↓ hookrightarrow ↪
rightharpoonup ⇀ leadsto ⇝ rightleftharpoons ⇌ nearrow ↗ searrow ↘
infty ∞ partial ∂ nabla ∇ forall ∀ exists ∃ nexists ∄ neg ¬ lnot ¬ emptyset ∅ varnothing ∅
ell ℓ hbar ℏ Re ℜ Im ℑ aleph ℵ wp ℘ prime ′ angle ∠ triangle △ square □ Box □ top ⊤ bot ⊥
checkmark ✓ surd √ ldots … dots … cdots ⋯ vdots ⋮ ddots ⋱ dotsc … dotsb ⋯ dotsm ⋯
langle ⟨ rangle ⟩ lceil ⌈ rceil ⌉ lfloor ⌊ rfloor ⌋ lvert | rvert | vert | lVert ‖ rVert ‖
Vert ‖ lbrace { rbrace } lbrack [ rbrack ] backslash \\ textbackslash \\ textbar |
ss ß o ø O Ø aa å AA Å ae æ AE Æ oe œ OE Œ l ł L Ł i ı j ȷ dh ð DH Ð th þ TH Þ ng ŋ NG Ŋ
dj đ DJ Đ textendash – textemdash — textbullet • textdegree ° degree ° copyright ©
textregistered ® texttrademark ™ S § P ¶ pounds £ euro € textquoteleft ‘ textquoteright ’
textquotedblleft “ textquotedblright ” textasciitilde ~ textless < textgreater > dag †
ddag ‡ textperthousand ‰ textmu µ textpm ± texttimes × LaTeX LaTeX TeX TeX BibTeX BibTeX
LaTeXe LaTeX2ε
""",
    )
)
_OPERATORS = _names(
    "log ln lg exp sin cos tan cot sec csc sinh cosh tanh coth arcsin arccos arctan max min "
    "sup inf lim liminf limsup arg det dim ker deg gcd lcm hom Pr mod bmod tr Tr rank"
)
_SPACES = {
    ",": " ", ";": " ", ":": " ", ">": " ", " ": " ", "\n": " ", "\t": " ", "!": "",
    "quad": " ", "qquad": " ", "enspace": " ", "thinspace": " ", "medspace": " ",
    "thickspace": " ", "negthinspace": "", "/": "", "-": "", "@": "", "\\": " ", "newline": " ",
}  # fmt: skip
_ESCAPES = {c: c for c in "$%&#_{}"} | {"|": "‖"}
_IGNORED = _names(
    "left right middle big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr Biggl Biggr bf it em "
    "rm sc sf sl tt cal mit normalfont displaystyle textstyle scriptstyle limits nolimits "
    "nonumber notag relax protect boldmath unboldmath"
)
_KEEP = _names(  # macros shown as their argument, in math mode
    "mathrm mathbf mathit mathsf mathtt mathnormal boldsymbol bm operatorname ensuremath "
    "pmb mathbold"
)
_TEXT = _names(  # macros shown as their argument, read as text
    "text textrm textbf textit textsf texttt textsc textsl textup textnormal textmd emph mbox "
    "hbox underline url uline"
)
_ACCENTS = {  # combining marks: text accents, then math accents
    '"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304",
    ".": "\u0307", "c": "\u0327", "v": "\u030c", "u": "\u0306", "H": "\u030b", "k": "\u0328",
    "r": "\u030a", "d": "\u0323", "b": "\u0331",
    "hat": "\u0302", "widehat": "\u0302", "tilde": "\u0303", "widetilde": "\u0303",
    "bar": "\u0304", "overline": "\u0305", "vec": "\u20d7", "overrightarrow": "\u20d7",
    "dot": "\u0307", "ddot": "\u0308", "check": "\u030c", "breve": "\u0306", "acute": "\u0301",
    "grave": "\u0300", "mathring": "\u030a",
}  # fmt: skip
_SUPERSCRIPTS = dict(
    zip(
        "0123456789+-=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVWαβγδεθιφχ*′†⊤'",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂᵅᵝᵞᵟᵋᶿᶥᵠᵡ*′†ᵀ′",
        strict=True,
    )
)
_SUBSCRIPTS = dict(
    zip(
        "0123456789+-=()aehijklmnoprstuvxβγρφχ",
        "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ",
        strict=True,
    )
)


_SUPERSCRIPTED, _SUBSCRIPTED = frozenset(_SUPERSCRIPTS.values()), frozenset(_SUBSCRIPTS.values())


def _alphabet(style: str, holes: str) -> dict[str, str]:
    """Return the letters of a mathematical alphabet (the older letterlike ones in its holes)."""
    letters = {}
    for case, first in (("CAPITAL", "A"), ("SMALL", "a")):
        for n in range(26):
            c = chr(ord(first) + n)
            for name in (f"MATHEMATICAL {style} {case} {c}", f"{holes} {case} {c}"):
                try:
                    letters[c] = unicodedata.lookup(name)
                    break
                except KeyError:
                    continue
    return letters


_ALPHABETS = {
    "mathcal": _alphabet("SCRIPT", "SCRIPT"),
    "mathscr": _alphabet("SCRIPT", "SCRIPT"),
    "mathbb": _alphabet("DOUBLE-STRUCK", "DOUBLE-STRUCK")
    | {str(n): chr(0x1D7D8 + n) for n in range(10)},
    "mathfrak": _alphabet("FRAKTUR", "BLACK-LETTER"),
}
_ALPHABETS["mathds"] = _ALPHABETS["mathbbm"] = _ALPHABETS["mathbb"]


def text(source: str) -> str:
    """Return source with its LaTeX (math, accents, \\emph, …) as readable Unicode text.

    Text without '$' or '\\' is returned as it is; a '$' that does not open and close math
    as TeX authors write it (a price) stays a '$'; what is not understood stays as written.
    """
    if "$" not in source and "\\" not in source:
        return source
    return _converted(source)


@lru_cache(maxsize=CACHE_SIZE)
def _converted(source: str) -> str:
    try:
        return _convert(source)
    except Exception:  # a presentation nicety must never stop a mail or a page
        log.exception("latex: could not convert %.60r; shown as written", source)
        return source


def _convert(source: str) -> str:
    parts, at, match = [], 0, _SEGMENT_RE.search(source)
    while match:
        inline = match.group(2)
        price = not _MATHY.search(inline) if inline is not None else False
        if price and source[match.end() : match.end() + 1].isdigit():  # "$5-$10"
            match = _SEGMENT_RE.search(source, match.start() + 1)
            continue
        parts.append(_Latex(source[at : match.start()]).run(False))
        math = next((g for g in match.groups() if g is not None), None)
        if math is None:  # \$
            parts.append("$")
        else:
            parts.append(" ".join(_Latex(math).run(True).split()))
        at = match.end()
        match = _SEGMENT_RE.search(source, at)
    parts.append(_Latex(source[at:]).run(False))
    return "".join(parts)


class _Latex:
    """One stretch of LaTeX (text or math) read left to right."""

    def __init__(self, source: str):
        self.s = source
        self.closing = _braces(source) if "{" in source else {}

    def run(self, math: bool) -> str:
        """Return the whole stretch converted."""
        if "\\" not in self.s and "{" not in self.s and not math:
            return self.s
        return self.span(0, len(self.s), math, 0)

    def span(self, i: int, stop: int, math: bool, depth: int) -> str:
        """Return s[i:stop] converted."""
        s = self.s
        if depth > MAX_DEPTH:
            return s[i:stop]
        out: list[str] = []
        while i < stop:
            plain = (_PLAIN_MATH if math else _PLAIN_TEXT).match(s, i, stop)
            if plain:
                out.append(plain.group())
                i = plain.end()
                continue
            c = s[i]
            if c == "\\":
                name, piece, i = self.command(i, math, depth)
                if name in _OPERATORS:  # "n \log n" and "n\log n" both read "n log n"
                    if out and out[-1][-1:].isalnum():
                        piece = " " + piece
                    if i < stop and (s[i].isalpha() or s[i] == "\\"):
                        piece += " "
                out.append(piece)
            elif c == "{" and self.closing.get(i, stop) < stop:
                end = self.closing[i]
                inner = self.span(i + 1, end, math, depth + 1)
                # In text, only a group of commands ({\"o}, {\em …}) is markup; {BERT} stays.
                keep = not math and end > i + 1 and s[i + 1] != "\\"
                out.append("{" + inner + "}" if keep else inner)
                i = end + 1
            elif math and c in "^_":
                script, i = self.argument(i + 1, True, depth)
                out.append(_script(c, script) if script is not None else c)
            elif math and c == "~":
                out.append(" ")
                i += 1
            else:
                out.append(c)
                i += 1
        return "".join(out)

    def argument(self, i: int, math: bool, depth: int) -> tuple[str | None, int]:
        """Return the next argument converted ({…}, a command or one character), or None."""
        s = self.s
        j = i
        while j < len(s) and s[j].isspace():
            j += 1
        if j >= len(s) or s[j] in "}]$" or (s[j] == "{" and j not in self.closing):
            return None, i
        if s[j] == "{":
            end = self.closing[j]
            return self.span(j + 1, end, math, depth + 1), end + 1
        if s[j] == "\\":
            _, piece, k = self.command(j, math, depth + 1)
            return piece, k
        return s[j], j + 1

    def bracket(self, j: int) -> int | None:
        """Return where an optional argument ([…]) at s[j] closes, outside any group."""
        s = self.s
        if s[j : j + 1] != "[":
            return None
        k, end = j + 1, min(len(s), j + 1 + MAX_INDEX)
        while k < end and s[k] != "]":
            k = self.closing[k] + 1 if s[k] == "{" and k in self.closing else k + 1
        return k if k < end and s[k] == "]" else None

    def command(self, i: int, math: bool, depth: int) -> tuple[str, str, int]:
        """Return the command at s[i] ('\\'): its name, its text and the index after it."""
        s = self.s
        if i + 1 >= len(s):
            return "", "\\", i + 1
        named = _NAME_RE.match(s, i + 1)
        name = named.group() if named else s[i + 1]
        j = named.end() if named else i + 2
        if s[j : j + 1] == "*" and name in _KEEP:  # \operatorname*{argmax}
            j += 1
        raw = s[i:j]
        if depth > MAX_DEPTH:
            return name, raw, j
        if name in _SYMBOLS:
            return name, _SYMBOLS[name], j
        if name in _OPERATORS:
            return name, "mod" if name == "bmod" else name, j
        if name in _SPACES:
            return name, _SPACES[name], j
        if named is None and name in _ESCAPES:
            return name, _ESCAPES[name], j
        if name in _IGNORED:  # with the spaces after it, as TeX reads it ({\bf x} is "x")
            while s[j : j + 1].isspace():
                j += 1
            if name in ("left", "right", "middle") and s[j : j + 1] == ".":
                j += 1
            return name, "", j
        if name in _ALPHABETS or name in _KEEP or name in _TEXT or name in _ACCENTS:
            arg, k = self.argument(j, math and name not in _TEXT, depth)
            if arg is None:
                return name, raw, j
            if name in _ALPHABETS:
                return name, "".join(_ALPHABETS[name].get(c, c) for c in arg), k
            if name in _ACCENTS:
                if len(name) == 1 and not arg.isalpha():  # \u003c is not a breve over a 0
                    return (name, name, k) if not arg and name in "^~" else (name, raw, j)
                if len(arg) > MAX_ACCENTED:  # not an accent over a letter or two
                    return name, s[i:k], k
                return name, _accent(arg, _ACCENTS[name]), k
            return name, arg, k
        if name == "not":
            arg, k = self.argument(j, math, depth)
            if arg is None:
                return name, raw, j
            return name, unicodedata.normalize("NFC", arg + "\u0338"), k
        return name, *self.structure(name, raw, j, math, depth)

    def structure(self, name: str, raw: str, j: int, math: bool, depth: int) -> tuple[str, int]:
        """Return fractions, roots, binomials and links as text; anything else as written."""
        if name in ("frac", "dfrac", "tfrac", "nicefrac", "cfrac", "binom", "href"):
            top, k = self.argument(j, math and name != "href", depth)
            if top is None:
                return raw, j
            bottom, k = self.argument(k, math, depth)
            if bottom is None:  # what was read stays read: no second reading, however nested
                return f"{raw}{{{top}}}", k
            if name == "href":
                return f"{bottom} ({top})", k
            if name == "binom":
                return f"({top} choose {bottom})", k
            return f"{_grouped(top)}/{_grouped(bottom)}", k
        if name == "sqrt":
            index, k = "", j
            close = self.bracket(j)
            if close is not None:
                index, k = self.span(j + 1, close, math, depth + 1), close + 1
            arg, k = self.argument(k, math, depth)
            if arg is None:
                return raw + (f"[{index}]" if k > j else ""), k
            sign = {"": "√", "3": "∛", "4": "∜"}.get(index) or _script("^", index) + "√"
            return sign + _grouped(arg), k
        # Unknown: kept as written, with the groups that follow it (\cite{key}, \begin{…}).
        out, k = [raw], j
        while self.s[k : k + 1] == "{" and k in self.closing:
            end = self.closing[k]
            out.append("{" + self.span(k + 1, end, math, depth + 1) + "}")
            k = end + 1
        return "".join(out), k


def _braces(s: str) -> dict[int, int]:
    """Return where each balanced '{' closes (escaped braces, \\{ and \\}, are not braces)."""
    closing: dict[int, int] = {}
    open_at: list[int] = []
    for match in _BRACE_RE.finditer(s):
        if match.group() == "{":
            open_at.append(match.start())
        elif match.group() == "}" and open_at:
            closing[open_at.pop()] = match.start()
    return closing


def _script(kind: str, script: str) -> str:
    """Return a superscript (kind '^') or subscript ('_') in Unicode, else as x^(…) or x_ij."""
    chars = "".join(script.split())
    table, done = (_SUPERSCRIPTS, _SUPERSCRIPTED) if kind == "^" else (_SUBSCRIPTS, _SUBSCRIPTED)
    if all(c in table or c in done for c in chars):
        return "".join(table.get(c, c) for c in chars)
    return kind + (chars if len(chars) == 1 or chars.isalnum() else f"({chars})")


def _grouped(part: str) -> str:
    """Return part, in parentheses when it is more than one symbol or word."""
    part = part.strip()
    return part if len(part) <= 1 or part.lstrip("√∛∜").isalnum() else f"({part})"


def _accent(arg: str, mark: str) -> str:
    """Return arg with the combining mark after each character, composed where Unicode can."""
    arg = {"ı": "i", "ȷ": "j"}.get(arg, arg)
    # Not after the marks themselves: \hat\hat\hat… grows by one mark a level, not doubles.
    marked = (c if c.isspace() or unicodedata.combining(c) else c + mark for c in arg)
    return unicodedata.normalize("NFC", "".join(marked))
