// Public surface of data/: datasets, readers, dataset resolution, batching, augmentation.
export * from './dataset.js';
export * from './mnist-embedded.js';
export {
  IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, MAX_IDX_SIDE, MAX_IDX_COUNT, MAX_IDX_BYTES,
  FASHION_MNIST_MEAN, FASHION_MNIST_STD, FASHION_MNIST_CLASSES,
  parseIdx, readIdxImages, readIdxLabels, idxFileNames, findIdxFiles, isFashionName, loadIdxDataset,
  type IdxKind, type IdxImages, type IdxSplit, type IdxDatasetOptions,
} from './idx.js';
export * from './resolve.js';
export * from './augment.js';
export * from './loader.js';
export * from './cifar-binary.js';
export * from './imagefolder.js';
export {
  decodeImage, loadSharp, DecodePool, defaultWorkerCount,
  type DecodedImage, type DecodePoolOptions, type RenderItem, type RenderResult,
} from './decode.js';
export * from './records.js';
export * from './transforms.js';
export * from './image.js';
export * from './sources.js';
