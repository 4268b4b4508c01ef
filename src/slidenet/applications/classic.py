"""The lecture's MNIST CNN and LeNet-5."""

from __future__ import annotations

from slidenet.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from slidenet.models.sequential import Sequential


def mnist_cnn(input_shape=(28, 28, 1), classes=10, name="mnist_cnn") -> Sequential:
    """The lecture's MNIST CNN (3,274,634 parameters on 28x28x1 with 10 classes).

    Conv2D(32, 5, same, relu) -> MaxPool(2) -> Conv2D(64, 5, same, relu) -> MaxPool(2) -> Flatten
    -> Dense(1024, relu) -> Dense(classes, softmax). Input (N, 28, 28, 1) -> output (N, classes).

    >>> mnist_cnn().count_params()
    3274634
    """
    return Sequential(
        [
            Input(input_shape),
            Conv2D(32, 5, padding="same", activation="relu"),
            MaxPooling2D(2),
            Conv2D(64, 5, padding="same", activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(1024, activation="relu"),
            Dense(classes, activation="softmax"),
        ],
        name=name,
    )


def lenet5(input_shape=(32, 32, 1), classes=10, name="lenet5") -> Sequential:
    """LeNet-5 (LeCun et al. 1998) with ReLU and max pooling: 61,706 parameters on 32x32x1.

    Conv2D(6, 5) -> MaxPool(2) -> Conv2D(16, 5) -> MaxPool(2) -> Flatten -> Dense(120) -> Dense(84)
    -> Dense(classes, softmax). On inputs smaller than 32x32 (MNIST's 28x28) the first convolution
    uses padding='same', so the rest of the net sees the sizes of the original.

    >>> lenet5().count_params(), lenet5((28, 28, 1)).output_shape
    (61706, (None, 10))
    """
    first_padding = "same" if min(input_shape[:2]) < 32 else "valid"
    return Sequential(
        [
            Input(input_shape),
            Conv2D(6, 5, padding=first_padding, activation="relu"),
            MaxPooling2D(2),
            Conv2D(16, 5, activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(120, activation="relu"),
            Dense(84, activation="relu"),
            Dense(classes, activation="softmax"),
        ],
        name=name,
    )
