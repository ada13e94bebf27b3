// SPDX-License-Identifier: MIT
// Minimal ERC-8004 ("Trustless Agents") Identity + Reputation registries for tests only.
// Written for this project from the standard's interface (function names, events, revert rules); not audited,
// no upgradeability, no ERC-165, no safe-transfer callbacks. Compiled by tests/erc8004/solidity.py with npm solc.
pragma solidity ^0.8.20;

contract Erc8004IdentityRegistry {
    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);
    event Registered(uint256 indexed agentId, string agentURI, address indexed owner);
    event URIUpdated(uint256 indexed agentId, string newURI, address indexed updatedBy);
    event MetadataSet(uint256 indexed agentId, string indexed indexedMetadataKey, string metadataKey, bytes metadataValue);

    uint256 private nextId;
    mapping(uint256 => address) private owners;
    mapping(uint256 => string) private uris;
    mapping(uint256 => address) private approvals;
    mapping(address => mapping(address => bool)) private operators;
    mapping(uint256 => address) private wallets;

    function name() external pure returns (string memory) { return "AgentIdentity"; }
    function symbol() external pure returns (string memory) { return "AGENT"; }

    function register(string calldata agentURI) external returns (uint256 agentId) {
        agentId = nextId++;
        owners[agentId] = msg.sender;
        uris[agentId] = agentURI;
        wallets[agentId] = msg.sender; // agentWallet starts as the owner
        emit Transfer(address(0), msg.sender, agentId);
        emit Registered(agentId, agentURI, msg.sender);
        emit MetadataSet(agentId, "agentWallet", "agentWallet", abi.encodePacked(msg.sender));
    }

    function ownerOf(uint256 agentId) public view returns (address owner) {
        owner = owners[agentId];
        require(owner != address(0), "nonexistent agent");
    }

    function tokenURI(uint256 agentId) external view returns (string memory) {
        ownerOf(agentId);
        return uris[agentId];
    }

    function setAgentURI(uint256 agentId, string calldata newURI) external {
        require(isAuthorizedOrOwner(msg.sender, agentId), "not authorized");
        uris[agentId] = newURI;
        emit URIUpdated(agentId, newURI, msg.sender);
    }

    function getAgentWallet(uint256 agentId) external view returns (address) {
        ownerOf(agentId);
        return wallets[agentId];
    }

    /// The owner (or an operator) points the agent's payment wallet at `newWallet`, which proves control by signing
    /// the EIP-712 message AgentWalletSet(agentId, newWallet, owner, deadline) of this registry's domain.
    function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes calldata signature) external {
        address owner = ownerOf(agentId);
        require(isAuthorizedOrOwner(msg.sender, agentId), "not authorized");
        require(block.timestamp <= deadline, "expired");
        require(newWallet != address(0) && signature.length == 65, "bad wallet signature");
        bytes32 domain = keccak256(abi.encode(
            keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
            keccak256("ERC8004IdentityRegistry"), keccak256("1"), block.chainid, address(this)));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", domain, keccak256(abi.encode(
            keccak256("AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)"),
            agentId, newWallet, owner, deadline))));
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        require(ecrecover(digest, v, r, s) == newWallet, "wallet did not sign");
        wallets[agentId] = newWallet;
        emit MetadataSet(agentId, "agentWallet", "agentWallet", abi.encodePacked(newWallet));
    }

    function approve(address to, uint256 agentId) external {
        address owner = ownerOf(agentId);
        require(msg.sender == owner || operators[owner][msg.sender], "not authorized");
        approvals[agentId] = to;
        emit Approval(owner, to, agentId);
    }

    function getApproved(uint256 agentId) external view returns (address) {
        ownerOf(agentId);
        return approvals[agentId];
    }

    function setApprovalForAll(address operator, bool approved) external {
        operators[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    function isApprovedForAll(address owner, address operator) external view returns (bool) {
        return operators[owner][operator];
    }

    function transferFrom(address from, address to, uint256 agentId) external {
        require(isAuthorizedOrOwner(msg.sender, agentId), "not authorized");
        require(ownerOf(agentId) == from && to != address(0), "bad transfer");
        owners[agentId] = to;
        approvals[agentId] = address(0);
        wallets[agentId] = address(0); // a transferred agent's wallet must be re-verified by the new owner
        emit MetadataSet(agentId, "agentWallet", "agentWallet", "");
        emit Transfer(from, to, agentId);
    }

    /// Reverts for an unknown agent (as ownerOf does).
    function isAuthorizedOrOwner(address spender, uint256 agentId) public view returns (bool) {
        address owner = ownerOf(agentId);
        return spender == owner || operators[owner][spender] || approvals[agentId] == spender;
    }
}

contract Erc8004ReputationRegistry {
    event NewFeedback(
        uint256 indexed agentId,
        address indexed clientAddress,
        uint64 feedbackIndex,
        int128 value,
        uint8 valueDecimals,
        string indexed indexedTag1,
        string tag1,
        string tag2,
        string endpoint,
        string feedbackURI,
        bytes32 feedbackHash
    );
    event FeedbackRevoked(uint256 indexed agentId, address indexed clientAddress, uint64 indexed feedbackIndex);
    event ResponseAppended(
        uint256 indexed agentId,
        address indexed clientAddress,
        uint64 feedbackIndex,
        address indexed responder,
        string responseURI,
        bytes32 responseHash
    );

    struct Entry {
        int128 value;
        uint8 valueDecimals;
        bool isRevoked;
        string tag1;
        string tag2;
    }

    int128 private constant MAX_ABS = 1e38;
    Erc8004IdentityRegistry private immutable identity;
    mapping(uint256 => mapping(address => mapping(uint64 => Entry))) private entries;
    mapping(uint256 => mapping(address => uint64)) private lastIndex;
    mapping(uint256 => address[]) private clients;
    mapping(uint256 => mapping(address => bool)) private isClient;

    constructor(address identityRegistry) {
        require(identityRegistry != address(0), "bad identity");
        identity = Erc8004IdentityRegistry(identityRegistry);
    }

    function getIdentityRegistry() external view returns (address) { return address(identity); }

    function giveFeedback(
        uint256 agentId,
        int128 value,
        uint8 valueDecimals,
        string calldata tag1,
        string calldata tag2,
        string calldata endpoint,
        string calldata feedbackURI,
        bytes32 feedbackHash
    ) external {
        require(valueDecimals <= 18, "too many decimals");
        require(value >= -MAX_ABS && value <= MAX_ABS, "value too large");
        // reverts for an unknown agent; the owner and its operators may not rate their own agent
        require(!identity.isAuthorizedOrOwner(msg.sender, agentId), "Self-feedback not allowed");
        uint64 index = ++lastIndex[agentId][msg.sender];
        entries[agentId][msg.sender][index] = Entry(value, valueDecimals, false, tag1, tag2);
        if (!isClient[agentId][msg.sender]) {
            isClient[agentId][msg.sender] = true;
            clients[agentId].push(msg.sender);
        }
        emit NewFeedback(agentId, msg.sender, index, value, valueDecimals, tag1, tag1, tag2, endpoint, feedbackURI, feedbackHash);
    }

    function revokeFeedback(uint256 agentId, uint64 feedbackIndex) external {
        require(feedbackIndex > 0, "index must be > 0");
        require(feedbackIndex <= lastIndex[agentId][msg.sender], "index out of bounds");
        Entry storage e = entries[agentId][msg.sender][feedbackIndex];
        require(!e.isRevoked, "Already revoked");
        e.isRevoked = true;
        emit FeedbackRevoked(agentId, msg.sender, feedbackIndex);
    }

    function appendResponse(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        string calldata responseURI,
        bytes32 responseHash
    ) external {
        require(feedbackIndex > 0, "index must be > 0");
        require(bytes(responseURI).length > 0, "Empty URI");
        require(feedbackIndex <= lastIndex[agentId][clientAddress], "index out of bounds");
        emit ResponseAppended(agentId, clientAddress, feedbackIndex, msg.sender, responseURI, responseHash);
    }

    function getLastIndex(uint256 agentId, address clientAddress) external view returns (uint64) {
        return lastIndex[agentId][clientAddress];
    }

    function getClients(uint256 agentId) external view returns (address[] memory) {
        return clients[agentId];
    }

    function readFeedback(uint256 agentId, address clientAddress, uint64 feedbackIndex)
        external
        view
        returns (int128 value, uint8 valueDecimals, string memory tag1, string memory tag2, bool isRevoked)
    {
        require(feedbackIndex > 0, "index must be > 0");
        require(feedbackIndex <= lastIndex[agentId][clientAddress], "index out of bounds");
        Entry storage e = entries[agentId][clientAddress][feedbackIndex];
        return (e.value, e.valueDecimals, e.tag1, e.tag2, e.isRevoked);
    }

    /// Mean of the non-revoked feedback of the named clients (a non-empty list: unfiltered summaries invite Sybils),
    /// filtered by tags when given, in 18 decimals.
    function getSummary(uint256 agentId, address[] calldata clientAddresses, string calldata tag1, string calldata tag2)
        external
        view
        returns (uint64 count, int128 summaryValue, uint8 summaryValueDecimals)
    {
        require(clientAddresses.length > 0, "clientAddresses required");
        int256 sum;
        for (uint256 i = 0; i < clientAddresses.length; i++) {
            uint64 last = lastIndex[agentId][clientAddresses[i]];
            for (uint64 j = 1; j <= last; j++) {
                Entry storage e = entries[agentId][clientAddresses[i]][j];
                if (e.isRevoked) continue;
                if (bytes(tag1).length > 0 && keccak256(bytes(tag1)) != keccak256(bytes(e.tag1))) continue;
                if (bytes(tag2).length > 0 && keccak256(bytes(tag2)) != keccak256(bytes(e.tag2))) continue;
                sum += int256(e.value) * int256(10 ** uint256(18 - e.valueDecimals));
                count++;
            }
        }
        if (count == 0) return (0, 0, 0);
        return (count, int128(sum / int256(uint256(count))), 18);
    }
}
