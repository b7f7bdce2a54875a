// Package samples owns Gantry's sample programs and the image they ship in.
//
// The image is built locally, without any registry: [BuildImage] compiles the
// static binaries samples/box (a shell and small coreutils) and samples/etl
// (gantry-etl, a tiny extract/transform/load program), packs them into a
// one-layer file system and imports it into the Docker daemon as
// gantry/samples:<content hash>, also tagged [Image]. Integration tests use it
// through package samples/sampletest; "make images" runs cmd/gantry-images.
package samples
