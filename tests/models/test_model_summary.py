"""summary(): Keras' table plus the conv/pool arithmetic, receptive field and multiply-adds."""

import slidenet as keras


def lecture_cnn():
    return keras.applications.mnist_cnn()


def summary_of(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def test_table_and_totals():
    text = summary_of(lecture_cnn())
    assert "Layer (type)" in text and "Output Shape" in text and "Param #" in text
    assert "(None, 28, 28, 32)" in text and "832" in text
    assert "(None, 7, 7, 64)" in text
    assert "Total params: 3,274,634" in text
    assert "Trainable params: 3,274,634" in text


def test_arithmetic_receptive_field_and_mult_adds():
    text = summary_of(lecture_cnn())
    assert "(28 - 5 + 2*2)/1 + 1 = 28" in text
    assert "(14 - 5 + 2*2)/1 + 1 = 14" in text
    assert "(28 - 2)/2 + 1 = 14" in text
    assert "receptive field 5x5" in text and "receptive field 14x14" in text
    # conv2: 14*14 positions * 64 filters * 5*5*32 taps = 10,035,200
    assert "10.0M mult-adds" in text


def test_ten_5x5_filters_on_32x32x3_with_pad_2():
    model = keras.Sequential([keras.layers.Conv2D(10, 5, padding=2, input_shape=(32, 32, 3))])
    assert model.output_shape == (None, 32, 32, 10)
    assert model.count_params() == 760
    assert "(32 - 5 + 2*2)/1 + 1 = 32" in summary_of(model)


def test_warns_when_windows_do_not_tile():
    model = keras.Sequential([keras.layers.Conv2D(1, 3, strides=3, input_shape=(7, 7, 1))])
    text = summary_of(model)
    assert "(7 - 3)/3 + 1 = 2.33 -> 2" in text
    assert "warning: windows do not tile" in text and "1 row(s)" in text


def test_batchnorm_non_trainable_and_unbuilt_model():
    model = keras.Sequential(
        [keras.layers.Dense(4, input_shape=(3,)), keras.layers.BatchNormalization()]
    )
    text = summary_of(model)
    assert "Total params: 32" in text  # 16 dense + 4*4 batchnorm
    assert "Non-trainable params: 8" in text
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    assert "not built" in summary_of(unbuilt)
