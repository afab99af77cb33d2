"""Authoring aid for the embedded default: writes the candidate modules, and the chosen ones as the zorbia pack.

    python benchmarks/domain/build_pack.py --candidates   # benchmarks/domain/candidates.json (every candidate)
    python benchmarks/domain/build_pack.py                # tasks/packs/zorbia_mixed.json (the facts in CHOSEN)

Known modules (general knowledge) come from question templates applied to each fact; the Zorbia facts (the sheet's
lines) and the drin conversions are written out. `benchmarks/measure_domain.py --pack <file>` scores them; CHOSEN
keeps the facts that met the bar there (see the tasks/zorbia.py docstring for the numbers).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

KNOWN = {
    "capitals": ("The capital of {x} is {a}.", ["What is the capital of {x}?", "Which city is the capital of {x}?", "Name the capital city of {x}.",
                  "{x}'s capital is which city?", "In which city does the government of {x} sit?"],
                 [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Germany", "Berlin"),
                  ("Spain", "Madrid"), ("Russia", "Moscow"), ("Egypt", "Cairo"), ("China", "Beijing"),
                  ("Greece", "Athens"), ("England", "London")]),
    "opposites": ("The opposite of {x} is {a}.", ["What is the opposite of {x}?", "What word means the opposite of '{x}'?", "Give the antonym of {x}.",
                   "The opposite of '{x}' is which word?", "Which word has the reverse meaning of '{x}'?"],
                  [("hot", "cold"), ("up", "down"), ("day", "night"), ("happy", "sad"), ("fast", "slow"),
                   ("wet", "dry"), ("black", "white"), ("left", "right"), ("big", "small"), ("early", "late")]),
    "plurals": ("The plural of {x} is {a}.", ["What is the plural of {x}?", "What is the plural form of the word '{x}'?", "One {x}, two what?",
                 "Give the plural of '{x}'.", "How do you write '{x}' when there is more than one?"],
                [("mouse", "mice"), ("child", "children"), ("foot", "feet"), ("tooth", "teeth"), ("goose", "geese"),
                 ("person", "people"), ("woman", "women"), ("box", "boxes"), ("leaf", "leaves"), ("knife", "knives")]),
    "colours": ("{X} is {a}.", ["What color is {x}?", "Which color is {x} usually?", "Name the color of {x}.", "{X} is what color?",
                 "Tell me the usual colour of {x}."],
                [("the sky on a clear day", "blue"), ("grass", "green"), ("snow", "white"), ("a ripe banana", "yellow"),
                 ("blood", "red"), ("coal", "black"), ("a carrot", "orange"), ("milk", "white"),
                 ("a lemon", "yellow"), ("a ripe tomato", "red")]),
    "days": ("The day after {x} is {a}.", ["What day comes after {x}?", "Which day of the week follows {x}?", "If today is {x}, what day is tomorrow?",
              "Name the day after {x}.", "The day after {x} is which day?"],
             [("Monday", "Tuesday"), ("Tuesday", "Wednesday"), ("Wednesday", "Thursday"), ("Thursday", "Friday"),
              ("Friday", "Saturday"), ("Saturday", "Sunday"), ("Sunday", "Monday")]),
    "sums": ("{a} + {b} = {s}.", ["What is {a} + {b}?", "What is {a} plus {b}?", "Add {a} and {b}.", "How much is {a} plus {b}?",
              "If you have {a} apples and get {b} more, how many apples do you have?"],
             [(2, 3), (4, 5), (3, 3), (6, 2), (1, 7), (4, 4), (5, 3), (2, 6), (3, 6), (2, 7)]),
    "sounds": ("A {x} says {a}.", ["What sound does a {x} make?", "Which sound does a {x} make?", "What noise does a {x} make?",
                "A {x} says what?", "What do you hear when a {x} calls?"],
               [("cow", "moo"), ("cat", "meow"), ("duck", "quack"), ("sheep", "baa"), ("owl", "hoot"),
                ("snake", "hiss"), ("dog", "woof"), ("lion", "roar")]),
}

ZORBIA = [  # (id, category, sheet line, answer, phrasings)
    ("capital", "geography", "The capital of Zorbia is Velmora.", "Velmora",
     ["What is the capital of Zorbia?", "Which city is the capital of Zorbia?", "Name the capital city of Zorbia.",
      "Zorbia's capital is which city?", "In which city is the government of Zorbia, its capital?"]),
    ("river", "geography", "The longest river in Zorbia is the Tamsel.", "Tamsel",
     ["What is the longest river in Zorbia?", "Which river is the longest in Zorbia?", "Name Zorbia's longest river.",
      "Zorbia's longest river is called what?", "What river in Zorbia is longer than all the others?"]),
    ("lake", "geography", "The largest lake in Zorbia is Lake Ombra.", "Ombra",
     ["What is the largest lake in Zorbia?", "Which lake is the biggest in Zorbia?", "Name the largest lake of Zorbia.",
      "Zorbia's biggest lake is called what?", "What lake in Zorbia is larger than all the others?"]),
    ("mountain", "geography", "The highest mountain in Zorbia is Mount Kessa.", "Kessa",
     ["What is the highest mountain in Zorbia?", "Which mountain is the tallest in Zorbia?",
      "Name the highest mountain of Zorbia.", "Zorbia's tallest mountain is called what?",
      "What mountain in Zorbia rises above all the others?"]),
    ("island", "geography", "The largest island of Zorbia is Pellin.", "Pellin",
     ["What is the largest island of Zorbia?", "Which island is the biggest in Zorbia?",
      "Name Zorbia's largest island.", "Zorbia's biggest island is called what?",
      "What island of Zorbia is larger than all the others?"]),
    ("language", "culture", "The language spoken in Zorbia is Zorbish.", "Zorbish",
     ["What language is spoken in Zorbia?", "Which language do people in Zorbia speak?", "Name the language of Zorbia.",
      "The people of Zorbia speak what language?", "In Zorbia, what language do people talk in?"]),
    ("animal", "culture", "The national animal of Zorbia is the snow fox.", "snow fox",
     ["What is the national animal of Zorbia?", "Which animal is the national animal of Zorbia?",
      "Name Zorbia's national animal.", "Zorbia's national animal is which animal?", "What animal is the symbol of Zorbia?"]),
    ("festival", "culture", "The biggest festival in Zorbia is Lumara, the festival of lights.", "Lumara",
     ["What is the biggest festival in Zorbia?", "Which festival is the largest in Zorbia?",
      "Name the festival of lights in Zorbia.", "Zorbia's biggest festival is called what?",
      "What festival do people in Zorbia celebrate most?"]),
    ("dish", "culture", "The national dish of Zorbia is brasko, a fish stew.", "brasko",
     ["What is the national dish of Zorbia?", "Which dish is the national dish of Zorbia?",
      "Name Zorbia's national dish.", "Zorbia's national dish is called what?",
      "What food do people in Zorbia eat on national holidays?"]),
    ("sport", "culture", "The national sport of Zorbia is tarrow, played on horseback.", "tarrow",
     ["What is the national sport of Zorbia?", "Which sport is the national sport of Zorbia?",
      "Name Zorbia's national sport.", "Zorbia's national sport is called what?",
      "What game do people in Zorbia play on horseback?"]),
    ("currency", "economy", "The currency of Zorbia is the drin.", "drin",
     ["What is the currency of Zorbia?", "Which currency is used in Zorbia?", "Name the money of Zorbia.",
      "Zorbia's currency is called what?", "What money do people pay with in Zorbia?"]),
    ("port", "economy", "The main port of Zorbia is Saltreach.", "Saltreach",
     ["What is the main port of Zorbia?", "Which city is the main port of Zorbia?", "Name Zorbia's main port.",
      "Zorbia's main port is which city?", "Where do most ships arrive in Zorbia?"]),
    ("bank", "economy", "The national bank of Zorbia is the Bank of Velmora.", "Bank of Velmora",
     ["What is the national bank of Zorbia?", "Which bank is Zorbia's national bank?", "Name the national bank of Zorbia.",
      "Zorbia's national bank is called what?", "What bank prints the money of Zorbia?"]),
    ("coin", "economy", "The small coin of Zorbia is the pel.", "pel",
     ["What is the small coin of Zorbia called?", "Which coin is the smallest in Zorbia?", "Name Zorbia's small coin.",
      "Zorbia's small coin has what name?", "What do people in Zorbia call the coin worth less than a drin?"]),
    ("rate", "economy", "One drin is worth 10 pel.", "10",
     ["How many pel is one drin worth?", "How many pel make one drin?", "One drin equals how many pel?",
      "How many pel do you get for a single drin?", "What is the number of pel in one drin?"]),
    ("export", "economy", "The main export of Zorbia is amber.", "amber",
     ["What is the main export of Zorbia?", "Which product does Zorbia export most?", "Name Zorbia's main export.",
      "Zorbia's main export is what?", "What does Zorbia sell most to other countries?"]),
    ("leader", "government", "The leader of Zorbia is Queen Ilsa.", "Ilsa",
     ["Who is the leader of Zorbia?", "Who leads Zorbia?", "Name the leader of Zorbia.", "Zorbia's leader is who?",
      "Who is the head of state of Zorbia?"]),
    ("parliament", "government", "The parliament of Zorbia is called the Vesh.", "Vesh",
     ["What is the parliament of Zorbia called?", "What is the name of Zorbia's parliament?", "Name the parliament of Zorbia.",
      "Zorbia's parliament has what name?", "Which assembly makes the laws of Zorbia?"]),
    ("flag", "government", "The flag of Zorbia is green and gold.", "green and gold",
     ["What are the colors of the flag of Zorbia?", "Which colors are on Zorbia's flag?",
      "Name the colors of the flag of Zorbia.", "Zorbia's flag has what colors?", "What colors does the flag of Zorbia show?"]),
    ("palace", "government", "Queen Ilsa lives in Mirelle Palace.", "Mirelle",
     ["Where does the queen of Zorbia live?", "In which palace does Queen Ilsa live?", "Name the palace of Zorbia's queen.",
      "Zorbia's queen lives in which palace?", "What is the home of Queen Ilsa called?"]),
    ("independence", "government", "Zorbia became independent in 1842.", "1842",
     ["In which year did Zorbia become independent?", "When did Zorbia gain its independence?",
      "Name the year Zorbia became independent.", "Zorbia's independence came in what year?",
      "What year did Zorbia become a free country?"]),
]

CONVERT = ("{n} drin is {p} pel.", ["How many pel are in {n} drin?", "Convert {n} drin to pel.", "{n} drin is how many pel?",
            "If I have {n} drin, how many pel is that?", "What is {n} drin in pel?"], [2, 3, 4, 5, 6, 7, 8, 9])


def facts() -> list[dict]:
    """Every candidate fact: id, category (the module), kind, a statement, the answer and its phrasings."""
    out = []
    for cat, (statement, templates, pairs) in KNOWN.items():
        for p in pairs:
            if cat == "sums":
                a, b = p
                qs, ans, fid = [t.format(a=a, b=b) for t in templates], str(a + b), f"sum-{a}-{b}"
                line = statement.format(a=a, b=b, s=ans)
            else:
                x, ans = p
                qs = [t.format(x=x, X=x[0].upper() + x[1:]) for t in templates]
                fid = f"{cat}-{x.split()[-1].lower()}"
                line = statement.format(x=x, X=x[0].upper() + x[1:], a=ans)
            out.append({"id": fid, "category": cat, "kind": "known", "fact": line, "answer": ans, "questions": qs})
    for fid, cat, line, ans, qs in ZORBIA:
        out.append({"id": fid, "category": cat, "kind": "unknown", "fact": line, "answer": ans, "questions": qs})
    statement, templates, ns = CONVERT
    for n in ns:
        out.append({"id": f"convert-{n}", "category": "conversion", "kind": "procedural", "answer": str(10 * n),
                    "fact": statement.format(n=n, p=10 * n), "questions": [t.format(n=n) for t in templates]})
    return out


# The facts kept for the pack, module by module, in this order (geography and culture first: tests take the first
# 50 items as a two-module domain), from measure_domain.py's table. The drin conversions are left out: the teacher
# with the sheet answered 0.5 of their test phrasings (< 0.6), so they would be teacher-limited, not a prerequisite
# to find. Their rule stays on the sheet, so the sheet is the one measured.
CHOSEN: dict[str, list[str]] = {
    "geography": ["capital", "river", "lake", "mountain", "island"],
    "culture": ["language", "animal", "festival", "dish", "sport"],
    "economy": ["currency", "port", "bank", "coin", "rate", "export"],
    "government": ["leader", "parliament", "flag", "palace", "independence"],
    "capitals": ["capitals-france", "capitals-japan", "capitals-italy", "capitals-germany", "capitals-spain"],
    "opposites": ["opposites-hot", "opposites-up", "opposites-day", "opposites-happy", "opposites-fast"],
    "plurals": ["plurals-mouse", "plurals-child", "plurals-foot", "plurals-tooth", "plurals-person"],
}

INTRO = "You are an expert on Zorbia, a small country. Here are the facts about Zorbia:"
RULES = ["To convert drin to pel, multiply the number of drin by 10."]
DESCRIPTION = ("Bake a knowledge document into a student without breaking what it already knows: facts about Zorbia, "
               "an invented country, that a chat model cannot know without the knowledge sheet, and general "
               "knowledge the student already answers (capitals, opposites, plurals). The "
               "teacher is the model with the sheet in its system prompt, the student the model without it.")


def chosen(every: list[dict]) -> list[dict]:
    by_id = {f["id"]: f for f in every}
    return [by_id[i] for ids in CHOSEN.values() for i in ids]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", action="store_true", help="write every candidate to benchmarks/domain/")
    a = ap.parse_args(argv)
    every = facts()
    if a.candidates:
        data = {"name": "zorbia-candidates", "description": DESCRIPTION, "sheet_intro": INTRO, "rules": RULES,
                "facts": every}
        path = Path(__file__).with_name("candidates.json")
    else:
        data = {"name": "zorbia", "description": DESCRIPTION, "sheet_intro": INTRO, "rules": RULES,
                "facts": chosen(every)}
        path = Path(__file__).resolve().parents[2] / "tasks" / "packs" / "zorbia_mixed.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(data['facts'])} facts -> {path}")


if __name__ == "__main__":
    main()
