"""Keras-style scripts run with ``import slidenet as keras`` (and ``from slidenet import layers``).

Three scripts in the style of the Keras examples gallery, written as Keras code with only the import
lines changed, run in-process (runpy) on small data:

1. "Simple MNIST convnet" with the functional API on the bundled real MNIST sample, fit with
   validation_split, evaluate on the test split.
2. The functional-API guide's multi-input, multi-output model: dict inputs and targets, a loss
   dict with loss_weights and metrics per output; the history keys Keras would report.
3. A subclassed model built from a composite block (Layer subclass with call), trained with fit,
   saved with save_weights and restored into a fresh instance.
"""

from __future__ import annotations

import runpy
import textwrap

import numpy as np
import pytest

MNIST_CONVNET = """
import numpy as np
import slidenet as keras
from slidenet import layers

keras.utils.set_random_seed(SEED)
num_classes = 10
input_shape = (28, 28, 1)

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist_sample.load_data()
x_train, y_train = x_train[:2500], y_train[:2500]  # a smaller run for the test
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

inputs = keras.Input(shape=input_shape)
x = layers.Conv2D(8, kernel_size=(3, 3), activation="relu")(inputs)
x = layers.MaxPooling2D(pool_size=(2, 2))(x)
x = layers.Conv2D(16, kernel_size=(3, 3), activation="relu")(x)
x = layers.MaxPooling2D(pool_size=(2, 2))(x)
x = layers.Flatten()(x)
x = layers.Dropout(0.5)(x)
outputs = layers.Dense(num_classes, activation="softmax")(x)
model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_convnet")
model.summary()

batch_size = 32
epochs = 3
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
history = model.fit(
    x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1, verbose=0
)
score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
"""

TICKETS = """
import numpy as np
import slidenet as keras
from slidenet import layers

keras.utils.set_random_seed(SEED)
num_tags = 12  # Number of unique issue tags
num_words = 64  # Size of vocabulary obtained when preprocessing text data
num_departments = 4  # Number of departments for predictions

title_input = keras.Input(shape=(num_words,), name="title")  # bag of words
body_input = keras.Input(shape=(num_words,), name="body")
tags_input = keras.Input(shape=(num_tags,), name="tags")

title_features = layers.Dense(16, activation="relu")(title_input)
body_features = layers.Dense(16, activation="relu")(body_input)
x = layers.concatenate([title_features, body_features, tags_input])

priority_pred = layers.Dense(1, name="priority")(x)
department_pred = layers.Dense(num_departments, name="department")(x)

model = keras.Model(
    inputs=[title_input, body_input, tags_input],
    outputs={"priority": priority_pred, "department": department_pred},
)
model.summary()

model.compile(
    optimizer=keras.optimizers.Adam(1e-2),
    loss={
        "priority": keras.losses.BinaryCrossentropy(from_logits=True),
        "department": keras.losses.CategoricalCrossentropy(from_logits=True),
    },
    loss_weights={"priority": 1.0, "department": 0.2},
    metrics={"department": ["accuracy"]},
)

rng = np.random.default_rng(0)  # dummy data with something to learn
title_data = rng.integers(0, 2, size=(256, num_words)).astype("float32")
body_data = rng.integers(0, 2, size=(256, num_words)).astype("float32")
tags_data = rng.integers(0, 2, size=(256, num_tags)).astype("float32")
priority_targets = (title_data[:, :8].sum(1) > 4).astype("float32")[:, None]
dept_targets = keras.utils.to_categorical(tags_data[:, :2] @ [1, 2], num_departments)

history = model.fit(
    {"title": title_data, "body": body_data, "tags": tags_data},
    {"priority": priority_targets, "department": dept_targets},
    epochs=12,
    batch_size=32,
    validation_split=0.25,
    verbose=0,
)
predictions = model.predict({"title": title_data, "body": body_data, "tags": tags_data})
"""

SUBCLASSED = """
import numpy as np
import slidenet as keras
from slidenet import layers

keras.utils.set_random_seed(SEED)


class ConvBlock(layers.Layer):
    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn = layers.BatchNormalization(momentum=0.9)  # a short run
        self.relu = layers.ReLU()

    def call(self, inputs, training=False):
        return self.relu(self.bn(self.conv(inputs), training=training))


class MiniCNN(keras.Model):
    def __init__(self, num_classes=10, **kwargs):
        super().__init__(**kwargs)
        self.block1 = ConvBlock(8)
        self.pool1 = layers.MaxPooling2D()
        self.block2 = ConvBlock(16)
        self.pool2 = layers.MaxPooling2D()
        self.flatten = layers.Flatten()
        self.classifier = layers.Dense(num_classes, activation="softmax")

    def call(self, inputs, training=False):
        x = self.pool1(self.block1(inputs, training=training))
        x = self.pool2(self.block2(x, training=training))
        return self.classifier(self.flatten(x))


(x_train, y_train), (x_test, y_test) = keras.datasets.mnist_sample.load_data()
x_train = x_train[:1000].astype("float32")[..., None] / 255
y_train = y_train[:1000]
x_test = x_test[:300].astype("float32")[..., None] / 255
y_test = y_test[:300]

model = MiniCNN()
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=3e-3),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
history = model.fit(
    x_train, y_train, batch_size=50, epochs=3, validation_data=(x_test, y_test), verbose=0
)
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)

model.save_weights(WEIGHTS_PATH)
restored = MiniCNN()
restored(x_test[:1])  # build it, then load
restored.load_weights(WEIGHTS_PATH)
same = np.array_equal(model.predict(x_test), restored.predict(x_test))
"""


def run(script, tmp_path, seed=1337, **globals_):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    return runpy.run_path(str(path), init_globals={"SEED": seed, **globals_}, run_name="__main__")


def test_mnist_convnet_script(tmp_path, capsys):
    env = run(MNIST_CONVNET, tmp_path)
    out = capsys.readouterr().out
    assert "x_train shape: (2500, 28, 28, 1)" in out
    assert 'Model: "mnist_convnet"' in out and "Connected to" in out
    history = env["history"].history
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    assert env["score"][1] > 0.85, env["score"]  # 10 classes: chance is 0.1
    assert f"Test accuracy: {env['score'][1]}" in out


def test_multi_input_multi_output_script(tmp_path, capsys):
    env = run(TICKETS, tmp_path)
    assert "Connected to" in capsys.readouterr().out
    history = env["history"].history
    per_output = ["priority_loss", "department_loss", "department_accuracy"]
    assert set(history) == {
        "loss",
        *per_output,
        "val_loss",
        *(f"val_{k}" for k in per_output),
        "learning_rate",
    }
    for key in ("loss", "priority_loss", "department_loss", "val_loss"):
        assert history[key][-1] < 0.8 * history[key][0], (key, history[key])
    # the total is the weighted sum of the per-output losses (epoch means of batch means)
    np.testing.assert_allclose(
        history["val_loss"],
        np.array(history["val_priority_loss"]) + 0.2 * np.array(history["val_department_loss"]),
        rtol=1e-5,
    )
    assert history["department_accuracy"][-1] > 0.75
    predictions = env["predictions"]
    assert set(predictions) == {"priority", "department"}
    assert predictions["priority"].shape == (256, 1)
    assert predictions["department"].shape == (256, 4)


@pytest.mark.filterwarnings("error")
def test_subclassed_model_script(tmp_path):
    env = run(SUBCLASSED, tmp_path, WEIGHTS_PATH=str(tmp_path / "mini.weights"))
    history = env["history"].history
    assert history["loss"][-1] < 0.4 * history["loss"][0], history["loss"]
    assert env["test_acc"] > 0.8, env["test_acc"]
    assert env["same"]
    model = env["model"]
    assert [type(layer).__name__ for layer in model.layers] == [
        "ConvBlock",
        "MaxPooling2D",
        "ConvBlock",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    ]
    assert model.count_params() == (9 * 8 + 4 * 8) + (9 * 8 * 16 + 4 * 16) + (7 * 7 * 16 + 1) * 10
