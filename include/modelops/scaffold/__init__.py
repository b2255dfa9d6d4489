"""Scaffolding for data scientists: draft a model declaration and suite from a sample file."""
