"""Class activation maps: a conv layer's feature maps weighted per channel, upsampled onto the input."""
