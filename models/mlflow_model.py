"""Entry point of the logged pyfunc model ("models from code", MLflow's recommended way to log a Python
model without pickling an object). MLflow executes this file when it loads the model, so unlike the rest
of the project it does something when run: it declares the model object. Nothing imports it."""

from mlflow.models import set_model

from models.pyfunc import IPCreditModel

set_model(IPCreditModel())
