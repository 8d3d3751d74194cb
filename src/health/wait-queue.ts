// The health runner's queue of servers waiting for a free attempt slot (at most maxConcurrent
// attempts run at once): first in, first out, and any member can leave at once when its server is
// removed. An array with indexOf and splice made each removal a search of the whole queue, so
// stopping (or reloading away) ~10,000 queued servers took quadratic time.
//
// The algorithm: a doubly linked list whose nodes are found through a Map from member to node, so
// push, shift and delete are all O(1) and the order is exactly arrival order. A member is in the
// queue at most once (pushing it again while queued leaves it where it is).

interface Node<T> {
  value: T;
  prev: Node<T> | undefined;
  next: Node<T> | undefined;
}

export class WaitQueue<T> {
  readonly #nodes = new Map<T, Node<T>>();
  #head: Node<T> | undefined;
  #tail: Node<T> | undefined;

  get size(): number {
    return this.#nodes.size;
  }

  has(value: T): boolean {
    return this.#nodes.has(value);
  }

  /** Add `value` at the back; false (and no change) when it is already queued. */
  push(value: T): boolean {
    if (this.#nodes.has(value)) return false;
    const node: Node<T> = { value, prev: this.#tail, next: undefined };
    if (this.#tail) this.#tail.next = node;
    else this.#head = node;
    this.#tail = node;
    this.#nodes.set(value, node);
    return true;
  }

  /** Remove and return the front member (undefined when empty). */
  shift(): T | undefined {
    const node = this.#head;
    if (!node) return undefined;
    this.#unlink(node);
    return node.value;
  }

  /** Remove `value` wherever it is; false when it was not queued. */
  delete(value: T): boolean {
    const node = this.#nodes.get(value);
    if (!node) return false;
    this.#unlink(node);
    return true;
  }

  clear(): void {
    this.#nodes.clear();
    this.#head = undefined;
    this.#tail = undefined;
  }

  #unlink(node: Node<T>): void {
    if (node.prev) node.prev.next = node.next;
    else this.#head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.#tail = node.prev;
    node.prev = undefined;
    node.next = undefined;
    this.#nodes.delete(node.value);
  }
}
