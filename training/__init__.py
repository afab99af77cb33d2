"""The student: loading (`loading`), SFT full or LoRA (`trainer`), batched chat generation (`generate`), atomic
checkpoints with content hashes (`checkpoints`), device and bf16 autocast choice (`device`).

Nothing is imported here, so `import training` stays cheap; import the submodules you need.
"""
