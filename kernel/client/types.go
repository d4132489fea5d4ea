package client

import "encoding/json"

// Status is GET /v1/status.
type Status struct {
	ChainID     string `json:"chain_id"`
	NodeID      string `json:"node_id"`
	Version     string `json:"version"`
	Height      uint64 `json:"height"`
	BlockHash   string `json:"block_hash"`
	StateRoot   string `json:"state_root"`
	TimeMs      int64  `json:"time_ms"`
	GenesisHash string `json:"genesis_hash"`
	MempoolSize int    `json:"mempool_size"`
	MaxTxGas    uint64 `json:"max_tx_gas"`
	// MaxUploadGas caps the gas limit of contract and policy uploads.
	MaxUploadGas uint64 `json:"max_upload_gas"`
	Role         string `json:"role"`   // "leader", "follower", "candidate", "pre-candidate", "learner" or "single"
	Leader       string `json:"leader"` // node id of the current leader, if known
	Term         uint64 `json:"term"`
	DiskBytes    int64  `json:"disk_bytes"`
	// EarliestHeight is the lowest height above 0 whose block the node
	// still holds (block_retention prunes older ones; 1: none pruned).
	EarliestHeight uint64 `json:"earliest_height,omitempty"`
	// RaftCommit and RaftApplied are the highest raft log index this node
	// knows committed and has applied (cluster nodes).
	RaftCommit  uint64 `json:"raft_commit,omitempty"`
	RaftApplied uint64 `json:"raft_applied,omitempty"`
	Peers       []Peer `json:"peers"`
	// SyncState says whether the node keeps up with the cluster:
	// SyncInSync, SyncCatchingUp (behind, getting closer) or SyncStalled
	// (behind with no progress for a while, or no leader known for a
	// while; see SyncError). A single node is always in sync.
	SyncState string `json:"sync_state"`
	// ClusterHeight is the highest block height this node knows the
	// cluster committed (≥ Height; 0 for a single node).
	ClusterHeight uint64 `json:"cluster_height,omitempty"`
	// SyncError is why catching up failed last, while behind.
	SyncError string `json:"sync_error,omitempty"`
}

// Sync states of Status.SyncState.
const (
	SyncInSync     = "in_sync"
	SyncCatchingUp = "catching_up"
	SyncStalled    = "stalled"
)

// Peer is one cluster member as seen by the node answering; the list
// includes that node itself (Self).
type Peer struct {
	NodeID  string `json:"node_id"`
	Address string `json:"address"`
	Role    string `json:"role"`
	// Self marks the node answering: it has no link to itself.
	Self bool `json:"self,omitempty"`
	// Connected: the answering node has a live QUIC connection to the peer.
	Connected bool `json:"connected"`
	// Link is that connection's state as an operator should read it:
	// LinkSelf, LinkConnected, LinkIdle or LinkDown.
	Link  string  `json:"link"`
	RTTMs float64 `json:"rtt_ms"`
	Match uint64  `json:"match_index,omitempty"`
}

// Link states of a Peer.
const (
	LinkSelf      = "self"      // the node answering
	LinkConnected = "connected" // a live connection
	// LinkIdle: no connection, and none is needed now: raft followers and
	// learners talk only to the leader, so two followers have no link
	// while the cluster is healthy.
	LinkIdle = "idle"
	// LinkDown: a link raft needs (between the leader and another member,
	// or between voters while no leader is known) is not connected.
	LinkDown = "disconnected"
)

// Coin is an amount in base units; Amount is a decimal string.
type Coin struct {
	Denom  string `json:"denom"`
	Amount string `json:"amount"`
}

// Account is GET /v1/accounts/{address}.
type Account struct {
	Address   string          `json:"address"`
	Nonce     uint64          `json:"nonce"`
	Balances  []Coin          `json:"balances"`
	HasPubKey bool            `json:"has_pub_key"`
	Height    uint64          `json:"height"`
	Proof     json.RawMessage `json:"proof,omitempty"` // a ledger.StateProof when ?prove=true
}

// Attr is an event attribute.
type Attr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Event is an event emitted by a transaction or by the chain itself.
type Event struct {
	Type  string `json:"type"`
	Attrs []Attr `json:"attrs"`
}

// Receipt is the outcome of a transaction.
type Receipt struct {
	Code     uint32  `json:"code"`
	CodeName string  `json:"code_name"`
	GasUsed  uint64  `json:"gas_used"`
	GasLimit uint64  `json:"gas_limit"`
	Fee      Coin    `json:"fee"`
	Events   []Event `json:"events"`
	Error    string  `json:"error,omitempty"`
	Data     string  `json:"data,omitempty"` // result bytes as UTF-8 JSON when they are, else base64
	// Logs are the contracts' debug logs (ctx.Logf, stdout, stderr): only
	// simulate and trace have them (they are not kept on chain).
	Logs []CallLog `json:"logs,omitempty"`
}

// CallLog is the debug log of one contract call.
type CallLog struct {
	Contract string `json:"contract"`
	Entry    string `json:"entry"`
	Depth    int    `json:"depth"`
	Log      string `json:"log"`
}

// TxTrace is a committed transaction re-executed on its pre-state
// (GET /v1/txs/{hash}/trace): the charges of its gas meter, which sum to
// the receipt's gas_used, and the tree of contract calls.
type TxTrace struct {
	TxHash  string      `json:"tx_hash"`
	Height  uint64      `json:"height"`
	Index   uint32      `json:"index"`
	Receipt *Receipt    `json:"receipt"`
	Gas     []GasItem   `json:"gas"`
	Calls   []CallTrace `json:"calls"`
}

// GasItem is one charge on a transaction's gas meter.
type GasItem struct {
	What string `json:"what"`
	Gas  uint64 `json:"gas"`
}

// CallTrace is one contract call: gas_used (nested calls included) =
// call_base_gas + warm_gas + load_gas + instruction_gas + the host functions' gas +
// the nested calls' gas_used.
type CallTrace struct {
	Contract       string      `json:"contract"`
	Entry          string      `json:"entry"`
	Depth          int         `json:"depth"`
	GasLimit       uint64      `json:"gas_limit"`
	GasUsed        uint64      `json:"gas_used"`
	CallBaseGas    uint64      `json:"call_base_gas"`
	WarmGas        uint64      `json:"warm_gas"` // the warm code set's bookkeeping (recording a use, or making the code warm)
	LoadGas        uint64      `json:"load_gas"`
	InstructionGas uint64      `json:"instruction_gas"`
	Host           []HostGas   `json:"host"`
	Calls          []CallTrace `json:"calls,omitempty"`
	Log            string      `json:"log,omitempty"`
	Error          string      `json:"error,omitempty"`
}

// HostGas is the calls and gas of one host function within a call.
type HostGas struct {
	Name  string `json:"name"`
	Calls int    `json:"calls"`
	Gas   uint64 `json:"gas"`
}

// TxSearch is one page of a transaction search (GET /v1/txs?...). Next,
// when set, is the `after` cursor of the next page; IndexBase is the
// lowest height the index covers (older transactions are not found).
type TxSearch struct {
	Txs       []Tx   `json:"txs"`
	Next      string `json:"next,omitempty"`
	IndexBase uint64 `json:"index_base"`
}

// Tx is a committed (or pending) transaction with its receipt.
type Tx struct {
	TxHash   string          `json:"tx_hash"`
	Height   uint64          `json:"height"`
	Index    uint32          `json:"index"`
	Sender   string          `json:"sender"`
	Nonce    uint64          `json:"nonce"`
	Kind     string          `json:"kind"`
	GasPrice string          `json:"gas_price"`
	Payload  json.RawMessage `json:"payload"`
	Memo     string          `json:"memo,omitempty"`
	Code     uint32          `json:"code"`
	GasUsed  uint64          `json:"gas_used"`
	Receipt  *Receipt        `json:"receipt,omitempty"`
}

// Block is GET /v1/blocks/{height}.
type Block struct {
	Height      uint64 `json:"height"`
	Hash        string `json:"hash"`
	PrevHash    string `json:"prev_hash"`
	TimeMs      int64  `json:"time_ms"`
	StateRoot   string `json:"state_root"`
	TxRoot      string `json:"tx_root"`
	ReceiptRoot string `json:"receipt_root"`
	NumTxs      uint32 `json:"num_txs"`
	GasUsed     uint64 `json:"gas_used"`
	Proposer    string `json:"proposer"`
	Txs         []Tx   `json:"txs"`
}

// Member is a cluster member as the ledger records it.
type Member struct {
	NodeID  string `json:"node_id"`
	Address string `json:"p2p_addr"`
	Role    string `json:"role"` // voter or learner
	Since   uint64 `json:"since_height"`
	Account string `json:"account"` // the node key's address, which signs its blocks and pays its fees
	// AsVoter: a learner admitted to become a voter; the leader promotes it
	// once it has caught up. Other learners wait for 'sos cluster promote'.
	AsVoter bool `json:"as_voter,omitempty"`
}

// JoinRequest is a pending request of a node to join the cluster, as the
// member it asked records it (node-local, not on the ledger) until an
// operator admits it ('sos cluster admit') or it expires.
type JoinRequest struct {
	NodeID  string `json:"node_id"`
	PubKey  string `json:"pub_key"`  // hex ML-DSA-65 public key (what member_add carries)
	Address string `json:"p2p_addr"` // the address the node claims, dialed back to check it
	// AddressVerified: at the last check (VerifiedAt) the node answering at
	// Address proved it holds PubKey. Only verified requests are admitted.
	AddressVerified bool   `json:"address_verified"`
	VerifiedAt      int64  `json:"verified_at_ms"`
	VerifyError     string `json:"verify_error,omitempty"` // why the last re-check failed
	FirstSeen       int64  `json:"first_seen_ms"`
	LastSeen        int64  `json:"last_seen_ms"`
	ExpiresAt       int64  `json:"expires_at_ms"` // LastSeen + the request TTL
}

// SubmitResult is the answer to POST /v1/txs.
type SubmitResult struct {
	TxHash  string   `json:"tx_hash"`
	Height  uint64   `json:"height,omitempty"` // set when the call waited for commit
	Code    uint32   `json:"code"`
	GasUsed uint64   `json:"gas_used"`
	Receipt *Receipt `json:"receipt,omitempty"`
	Error   string   `json:"error,omitempty"` // rejection by the mempool (HTTP 4xx) or commit timeout
}

// BatchResult is one entry of POST /v1/txs/batch.
type BatchResult struct {
	TxHash string `json:"tx_hash"`
	Error  string `json:"error,omitempty"`
}

// Supply is GET /v1/supply: per base denom, the total and what the fee
// collector holds.
type Supply struct {
	Denom        string `json:"denom"`
	Total        string `json:"total"`
	FeeCollector string `json:"fee_collector"`
}

// Denom describes a token.
type Denom struct {
	Display     string `json:"display"`
	Base        string `json:"base"`
	Exponent    uint8  `json:"exponent"`
	Description string `json:"description,omitempty"`
}

// StreamEvent is one message of GET /v1/events (server-sent events): Type is
// the SSE event name ("block", "tx", ...), Data the JSON payload.
type StreamEvent struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// BlockEvent is the data of a "block" stream event.
type BlockEvent struct {
	Height    uint64 `json:"height"`
	Hash      string `json:"hash"`
	TimeMs    int64  `json:"time_ms"`
	StateRoot string `json:"state_root"`
	NumTxs    uint32 `json:"num_txs"`
	GasUsed   uint64 `json:"gas_used"`
}

// TxEvent is the data of a "tx" stream event.
type TxEvent struct {
	TxHash  string  `json:"tx_hash"`
	Height  uint64  `json:"height"`
	Sender  string  `json:"sender"`
	Kind    string  `json:"kind"`
	Code    uint32  `json:"code"`
	GasUsed uint64  `json:"gas_used"`
	Events  []Event `json:"events"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// Code is an uploaded contract code (GET /v1/contracts/codes).
type Code struct {
	CodeID    string `json:"code_id"`
	Creator   string `json:"creator"`
	Size      int    `json:"size"`          // bytes uploaded
	Prepared  int    `json:"prepared_size"` // bytes stored after metering and snapshot
	Height    uint64 `json:"height"`
	Instances uint64 `json:"instances"`
	HasSchema bool   `json:"has_schema"` // GET /v1/contracts/codes/{id}/schema serves it
	// Warm: the code is in the chain's warm set, and its calls pay no
	// module load; LastUse is the height of its last call (or upload).
	Warm    bool   `json:"warm"`
	LastUse uint64 `json:"last_use,omitempty"`
}

// Contract is a contract instance (GET /v1/contracts, /v1/contracts/{address}).
type Contract struct {
	Address  string `json:"address"`
	CodeID   string `json:"code_id"`
	Label    string `json:"label"`
	Creator  string `json:"creator"`
	Admin    string `json:"admin,omitempty"`
	Height   uint64 `json:"height"`
	Calls    uint64 `json:"calls"`
	GasUsed  uint64 `json:"gas_used"`
	Balances []Coin `json:"balances"`
	// ContractName and ContractVersion are what the contract records under
	// its contract_info key (the SDK's Contract.Name/Version), if anything.
	ContractName    string `json:"contract_name,omitempty"`
	ContractVersion string `json:"contract_version,omitempty"`
}

// StateEntry is one key/value of a contract's storage
// (GET /v1/contracts/{address}/state). Key and Value are hex; ValueText is
// the value as text when it is valid UTF-8.
type StateEntry struct {
	Key       string `json:"key"`
	KeyText   string `json:"key_text,omitempty"`
	Value     string `json:"value"`
	ValueText string `json:"value_text,omitempty"`
}

// LogLine is one record of a node's recent log (GET /v1/logs): Seq grows
// by one per record, so a reader asks for the ones after the last it saw.
type LogLine struct {
	Seq    uint64 `json:"seq"`
	TimeMs int64  `json:"time_ms"`
	Level  string `json:"level"` // DEBUG, INFO, WARN, ERROR
	Msg    string `json:"msg"`   // the message and its attributes, key=value
}
