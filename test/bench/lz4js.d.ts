// The pure-JavaScript LZ4 codec the ladder's kafkajs peer registers (the package has no types of its own).
declare module 'lz4js' {
  const lz4: { compress(data: Uint8Array): Uint8Array; decompress(data: Uint8Array): Uint8Array };
  export default lz4;
}
