// Public surface of the image builder.
export { buildImages, listDefinitions, type BuildImagesOptions, type BuiltImage } from "./build.js";
export { computeRef, parseImageDefinition, ImageDefinitionError, type ImageDefinition } from "./definition.js";
export { LayerBuildError } from "./layers.js";
