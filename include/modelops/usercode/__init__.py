"""The data scientist's own code in a model: importing it (with errors that name the model, the
file and the line), building their feature steps and estimators, deciding which of their types
skops may trust, and loading a logged model together with the code it was logged with."""
