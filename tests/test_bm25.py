"""BM25's words: the fast ASCII tokenizer finds the regular expression's words, and a stem
counted alone is counted as in the pass over every stem."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from digest.bm25 import FEW_STEMS, TextIndex, paper_text, paper_words, tokens
from digest.store.relevance import Stemmer

WORDS = re.compile(r"[^\W_]+")


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_ascii_text_gives_the_words_of_the_regular_expression(text):
    assert tokens(text) == WORDS.findall(text.casefold())


@given(st.text(max_size=40))
def test_any_text_gives_runs_of_letters_and_digits(text):
    assert tokens(text) == WORDS.findall(text.casefold())


def test_a_stem_counted_alone_is_counted_as_in_the_whole_pass():
    papers = {
        "a": ("Graph networks", "Networking graphs: a network of graph_nets.", ["Ada Graph"]),
        "b": ("Sparse attention", "Attending sparsely to networks.", ["Zoë Müller"]),
        "c": ("Nothing shared", "Müller's lemma, in ASCII and not.", ["Bo"]),
    }
    words = {i: paper_words(*parts) for i, parts in papers.items()}
    stems = Stemmer().stems({w for found in words.values() for part in found for w in part})
    alone, whole = TextIndex(words, stems), TextIndex(words, stems)
    whole._count_all()
    for stem in {*stems.values(), "absent"}:
        assert alone._postings(stem) == whole._postings(stem)
    query = [stems["network"], stems["graph"]]
    assert alone.bm25(query, papers) == whole.bm25(query, papers)
    scores = alone.bm25(query, papers)
    assert scores["a"][0] > scores["b"][0] > 0 == scores["c"][0]  # the title weighs most
    assert scores["a"][1] >= {"graph", "graphs", "network", "networks"}  # bold as written
    assert "ada" not in scores["a"][1]  # an author's name is scored, never bold
    text = paper_text(words["a"], stems)
    assert text.counts[stems["graph"]] == 3 * 1 + 2 + 2 * 1  # title x3, abstract, author x2
    assert alone.lengths["a"] == text.length


def test_past_a_few_stems_every_stem_is_counted_in_one_pass():
    words = {str(n): paper_words(f"word{n} common", "text", []) for n in range(FEW_STEMS + 5)}
    index = TextIndex(words, Stemmer().stems({f"word{n}" for n in range(FEW_STEMS + 5)}))
    for n in range(FEW_STEMS):
        assert index._postings(f"word{n}") == {str(n): 3.0}
    assert not index.whole
    assert index._postings("common") == {str(n): 3.0 for n in range(FEW_STEMS + 5)}
    assert index.whole and index._postings(f"word{FEW_STEMS + 4}") == {str(FEW_STEMS + 4): 3.0}
