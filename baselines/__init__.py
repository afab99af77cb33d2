"""The baselines IOA is compared with (algorithm §5): the ablations (node variants the graph builder wires), the
one-shot Self-Instruct arm and LLM2LLM. None of them is inside the pedagogy's own nodes."""
