"""Near-duplicate detection (s2l.skills.overlap): what keeps evaluation prompts out of training; and
the code names an answer invents."""

from s2l.skills.overlap import NearDuplicates, invented_names, overlap, shingles

PROMPT = ("Write a commit message: I fixed a bug where the login form threw a TypeError when the email field "
          "was left empty. This fixes issue #412.")


def test_a_reworded_prompt_is_a_near_duplicate():
    seen = NearDuplicates([PROMPT])
    assert seen.find(PROMPT.upper())
    assert seen.find("Commit message please: I fixed a bug where the login form threw a TypeError when the email "
                     "field was left empty (issue #412).")
    assert seen.find("the login form threw a TypeError when the email field was left empty")  # a fragment of it


def test_a_different_request_is_not():
    seen = NearDuplicates([PROMPT])
    assert not seen.find("Write a commit message: I added a dark mode toggle to the settings page.")
    assert not seen.find("Commit message for a login fix")  # a stock phrase shared is not a repeat
    assert not seen.find("")


def test_a_short_text_repeated_whole_is_a_near_duplicate():
    assert NearDuplicates(["Fix the login bug."]).find("fix the login bug")


def test_overlap_is_containment_of_the_smaller_text():
    a, b = shingles("one two three four five"), shingles("one two three")
    assert overlap(a, b) == 1.0  # "one two three" is wholly inside the longer text
    assert overlap(a, shingles("five six seven")) == 0.0


def test_code_names_the_request_does_not_hold_are_invented():
    function = "def celsius_to_fahrenheit(celsius: float) -> float:\n    return celsius * 9 / 5 + 32"
    docstring = ('"""Convert Celsius to Fahrenheit.\n\nArgs:\n    celsius (float): Degrees.\n\nReturns:\n'
                 '    float: Degrees Fahrenheit.\n\nRaises:\n    ValueError: If celsius is not a number.\n"""')
    assert invented_names(function, docstring) == ["ValueError"]
    raising = function.replace("    return", "    if celsius < -273.15:\n        raise ValueError(celsius)\n    return")
    assert invented_names(raising, docstring) == []
    # A parameter the function does not take, named in snake_case; the function's own name is given.
    assert invented_names(function, "Uses celsius_to_fahrenheit with round_digits (int).") == ["round_digits"]
    # Plain words, one capitalised word and a name given as part of a longer one are no code names.
    assert invented_names("Fixed the parser.", "fix(parser): handle the Empty line\n\nCloses #88") == []
