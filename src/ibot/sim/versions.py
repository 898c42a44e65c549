"""Every server-version gate of the TWS protocol the simulator implements, as named constants.

A layout checks `server_version >= MIN_SERVER_VER_X`, never a bare number.
"""

from __future__ import annotations

# Range the simulator negotiates over (see IB_NOTES: from 201 messages switch to binary ids + protobuf).
MIN_CLIENT_VERSION = 157
MAX_CLIENT_VERSION = 178

# --- gates used by the order-side layouts (sim/layouts_orders.py) -------------------------------------
# Below 158 nothing changes in PLACE_ORDER / OPEN_ORDER / COMPLETED_ORDER / EXECUTION_DATA for us: no message
# version field in any of them (gone since 145 / 136), everything older is always on.
# PLACE_ORDER also gains advancedErrorOverride at MIN_SERVER_VER_ADVANCED_ORDER_REJECT (166, defined below).
MIN_SERVER_VER_DURATION = 158  # PLACE_ORDER, OPEN_ORDER: duration (ib_async reads it from 159 only)
MIN_SERVER_VER_POST_TO_ATS = 160  # PLACE_ORDER, OPEN_ORDER: postToAts
MIN_SERVER_VER_AUTO_CANCEL_PARENT = 162  # PLACE_ORDER, OPEN_ORDER: autoCancelParent
MIN_SERVER_VER_MANUAL_ORDER_TIME = 169  # PLACE_ORDER: manualOrderTime; CANCEL_ORDER: manualOrderCancelTime
MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS = 170  # PLACE_ORDER (conditional), OPEN/COMPLETED_ORDER: 5 peg fields
MIN_SERVER_VER_FA_PROFILE_DESUPPORT = 177  # PLACE_ORDER, OPEN_ORDER, COMPLETED_ORDER: faProfile dropped
MIN_SERVER_VER_PENDING_PRICE_REVISION = 178  # EXECUTION_DATA: pendingPriceRevision

# --- requests that exist only from a version (sim/requests.py) ----------------------------------------
MIN_SERVER_VER_WSHE_CALENDAR = 161  # REQ_WSH_META_DATA .. CANCEL_WSH_EVENT_DATA exist from here

# --- gates used by session, market data, contract and account messages ----------------------------------
# Below 163 nothing else changes in the messages the simulator speaks: everything older is always on.
MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT = 163  # CONTRACT_DATA: sizeMinTick (163 only)
MIN_SERVER_VER_SIZE_RULES = (
    164  # CONTRACT_DATA: no version field; minSize/sizeIncrement/suggestedSizeIncrement
)
MIN_SERVER_VER_ADVANCED_ORDER_REJECT = 166  # ERR_MSG: advancedOrderRejectJson
MIN_SERVER_VER_USER_INFO = 167  # REQ_USER_INFO / USER_INFO exist from here
# REQ_CONTRACT_DATA: issuerId field from the client; SYMBOL_SAMPLES: each contract's description and issuerId
MIN_SERVER_VER_BOND_ISSUERID = 176
MIN_SERVER_VER_ERROR_TIME = 194  # ERR_MSG: no version field, errorTime added (above what we negotiate)
MIN_SERVER_VER_HISTORICAL_DATA_END = 196  # HISTORICAL_DATA_END split out (above what we negotiate)
