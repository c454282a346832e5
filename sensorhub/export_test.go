package sensorhub

// Exports for the package's external tests: the decoder is tested on its
// own, but is not part of the API.

type (
	Decoder = decoder
	Input   = input
)

var NewDecoder = newDecoder
