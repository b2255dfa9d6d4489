"""Scaffolding for data scientists: draft a model declaration and suite from a sample file, and
(``--with-code``) a starter package for the model's own code."""
