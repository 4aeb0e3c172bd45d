"""Expert pools, panel sampling and rotation between rounds."""
