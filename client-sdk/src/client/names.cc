#include "haven/client.h"

namespace haven::sdk {

const char* ToString(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kExited: return "quick exit ran: the client is inert";
    case Code::kWrongRole: return "not allowed for this role";
    case Code::kNotFound: return "no such conversation";
    case Code::kWrongState: return "not possible in the conversation's current state";
    case Code::kStorage: return "the local store or storage directory failed";
    case Code::kWrongPassphrase: return "the local store did not open with this passphrase or key";
    case Code::kRefused: return "the server refused the request";
    case Code::kUnavailable: return "the server cannot be reached";
    case Code::kInternal: return "internal error";
  }
  return "unknown status";
}

const char* ToString(ConversationState state) {
  switch (state) {
    case ConversationState::kOpening: return "opening";
    case ConversationState::kWaiting: return "waiting for a counsellor";
    case ConversationState::kActive: return "active";
    case ConversationState::kConnectionLost: return "connection lost";
    case ConversationState::kClosedBySurvivor: return "closed by the survivor";
    case ConversationState::kClosedByCounsellor: return "closed by the counsellor";
    case ConversationState::kSurvivorLeftQuickly: return "left quickly";
    case ConversationState::kTransferred: return "transferred";
    case ConversationState::kLeft: return "left (supervisor)";
  }
  return "unknown";
}

}  // namespace haven::sdk
