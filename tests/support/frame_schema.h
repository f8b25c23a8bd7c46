// The haven.v1 schema as protoc describes it (a FileDescriptorSet compiled
// from proto/haven/v1/frame.proto at build time), read with a few lines of
// wire decoding: the generated code is protobuf-lite and has no descriptors,
// and linking the full runtime beside lite would define every symbol twice.
//
// What the hostile tests need from it: every kind of the Request oneof, so
// that request types added later are covered without touching the tests.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace haven::testing {

struct SchemaField {
  std::string name;
  std::uint32_t number = 0;
  std::uint32_t type = 0;  // FieldDescriptorProto.Type: 12 is bytes, 11 a message
  std::string type_name;   // ".haven.v1.SendEnvelope" for messages
  std::optional<std::int32_t> oneof_index;
};

struct SchemaMessage {
  std::vector<SchemaField> fields;
  std::vector<std::string> oneofs;
};

// One kind of Request: its field in the oneof, and where its message keeps a
// conversation id (if it names one).
struct RequestKind {
  std::string name;          // "send_envelope"
  std::uint32_t number = 0;  // the field number inside Request
  std::optional<std::uint32_t> conversation_id_field;
};

class FrameSchema {
 public:
  // nullopt if the file is missing or not a descriptor set.
  static std::optional<FrameSchema> Load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    FrameSchema schema;
    std::string_view set(data);
    Field f;
    while (Next(set, f)) {
      if (f.number == 1 && f.wire == 2 && !schema.ReadFile(f.bytes)) return std::nullopt;
    }
    if (schema.messages_.empty()) return std::nullopt;
    return schema;
  }

  const SchemaMessage* Find(const std::string& full_name) const {
    auto it = messages_.find(full_name);
    return it == messages_.end() ? nullptr : &it->second;
  }

  // Every field of Request's oneof `kind`, in field-number order.
  std::vector<RequestKind> RequestKinds() const {
    std::vector<RequestKind> kinds;
    const SchemaMessage* request = Find(".haven.v1.Request");
    if (!request) return kinds;
    std::optional<std::int32_t> kind_oneof;
    for (std::size_t i = 0; i < request->oneofs.size(); ++i) {
      if (request->oneofs[i] == "kind") kind_oneof = static_cast<std::int32_t>(i);
    }
    for (const SchemaField& f : request->fields) {
      if (!kind_oneof || f.oneof_index != kind_oneof) continue;
      RequestKind k{f.name, f.number, std::nullopt};
      if (const SchemaMessage* m = Find(f.type_name)) {
        for (const SchemaField& inner : m->fields) {
          if (inner.name == "conversation_id" && inner.type == 12)
            k.conversation_id_field = inner.number;
        }
      }
      kinds.push_back(std::move(k));
    }
    return kinds;
  }

 private:
  struct Field {
    std::uint32_t number = 0;
    std::uint32_t wire = 0;
    std::uint64_t varint = 0;
    std::string_view bytes;
  };

  static bool Varint(std::string_view& in, std::uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
      const auto b = static_cast<std::uint8_t>(in.front());
      in.remove_prefix(1);
      out |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  // The next field of a message; false at the end or on bad input.
  static bool Next(std::string_view& in, Field& f) {
    std::uint64_t tag = 0;
    if (in.empty() || !Varint(in, tag)) return false;
    f.number = static_cast<std::uint32_t>(tag >> 3);
    f.wire = static_cast<std::uint32_t>(tag & 7);
    switch (f.wire) {
      case 0:
        return Varint(in, f.varint);
      case 1:
        if (in.size() < 8) return false;
        in.remove_prefix(8);
        return true;
      case 5:
        if (in.size() < 4) return false;
        in.remove_prefix(4);
        return true;
      case 2: {
        std::uint64_t len = 0;
        if (!Varint(in, len) || len > in.size()) return false;
        f.bytes = in.substr(0, static_cast<std::size_t>(len));
        in.remove_prefix(static_cast<std::size_t>(len));
        return true;
      }
      default:
        return false;  // groups do not occur in descriptors
    }
  }

  // FileDescriptorProto: package (2), message_type (4).
  bool ReadFile(std::string_view file) {
    std::string package;
    std::vector<std::string_view> messages;
    Field f;
    while (Next(file, f)) {
      if (f.number == 2 && f.wire == 2) package = std::string(f.bytes);
      if (f.number == 4 && f.wire == 2) messages.push_back(f.bytes);
    }
    for (std::string_view m : messages) ReadMessage("." + package, m);
    return true;
  }

  // DescriptorProto: name (1), field (2), nested_type (3), oneof_decl (8).
  void ReadMessage(const std::string& scope, std::string_view message) {
    SchemaMessage out;
    std::string name;
    std::vector<std::string_view> nested;
    Field f;
    while (Next(message, f)) {
      if (f.wire != 2) continue;
      if (f.number == 1) name = std::string(f.bytes);
      if (f.number == 2) out.fields.push_back(ReadField(f.bytes));
      if (f.number == 3) nested.push_back(f.bytes);
      if (f.number == 8) out.oneofs.push_back(OneofName(f.bytes));
    }
    const std::string full = scope + "." + name;
    for (std::string_view n : nested) ReadMessage(full, n);
    messages_[full] = std::move(out);
  }

  // FieldDescriptorProto: name (1), number (3), type (5), type_name (6), oneof_index (9).
  static SchemaField ReadField(std::string_view field) {
    SchemaField out;
    Field f;
    while (Next(field, f)) {
      if (f.number == 1 && f.wire == 2) out.name = std::string(f.bytes);
      if (f.number == 3 && f.wire == 0) out.number = static_cast<std::uint32_t>(f.varint);
      if (f.number == 5 && f.wire == 0) out.type = static_cast<std::uint32_t>(f.varint);
      if (f.number == 6 && f.wire == 2) out.type_name = std::string(f.bytes);
      if (f.number == 9 && f.wire == 0) out.oneof_index = static_cast<std::int32_t>(f.varint);
    }
    return out;
  }

  static std::string OneofName(std::string_view oneof) {
    Field f;
    while (Next(oneof, f)) {
      if (f.number == 1 && f.wire == 2) return std::string(f.bytes);
    }
    return "";
  }

  std::map<std::string, SchemaMessage> messages_;
};

// Protobuf wire encoding of one length-delimited field.
inline std::string LengthDelimited(std::uint32_t number, const std::string& body) {
  std::string out;
  auto varint = [&out](std::uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  };
  varint((std::uint64_t{number} << 3) | 2);
  varint(body.size());
  return out + body;
}

}  // namespace haven::testing
