// Package cdm is the lake format of lakelink: the Common Data Model (CDM)
// folder that LAKE-FORMAT.md describes.
//
// It holds four things, none of which does I/O:
//
//   - the CSV dialect: how a lakelink.Value of each Kind is written as a
//     field (AppendValue, AppendString, AppendID, AppendSinkTime) and read
//     back (Reader, SplitFields, Field, DecodeValue);
//   - the layout: table folder names, partition names and the paths of
//     live, split and snapshot partition files;
//   - model.json: the Go types that marshal to exactly the documented JSON,
//     and the builders that turn what the engine knows into an entity;
//   - the per-table metadata files under the system folder.
//
// The encoders append into caller-provided buffers and do not allocate per
// value for numbers and strings, because they run once per value on
// millions of rows.
package cdm
