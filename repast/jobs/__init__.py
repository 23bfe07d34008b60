"""The operations, each taking the collaborators it uses (registry, engine, online store):
training retrieval, materialization, push, apply and plan (with the repo's files and their
validation) and the online read."""
