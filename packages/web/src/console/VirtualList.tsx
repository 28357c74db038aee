import './ops.css'
import type { ComponentChildren } from 'preact'
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks'

interface VirtualListProps<T> {
  items: readonly T[]
  keyOf: (item: T) => string
  render: (item: T) => ComponentChildren
  /** A row's height in pixels until rows have been measured. */
  estimatedRowHeight: number
  /** Rows rendered beyond each edge of the visible part, so that a fast scroll shows no gap. */
  overscan?: number
  class?: string
}

/**
 * A list that renders only the rows in view (and a few more), however long it is: a thousand conversations cost the
 * page what twenty do. Rows are measured as they render, so they may differ in height. The arrow keys, Page Up/Down,
 * Home and End move the focus from row to row, scrolling rows into existence as they go; each row tells assistive
 * technology its place in the whole list.
 */
export function VirtualList<T>(props: VirtualListProps<T>) {
  const { items, keyOf, estimatedRowHeight } = props
  const overscan = props.overscan ?? 6
  const viewport = useRef<HTMLDivElement>(null)
  const list = useRef<HTMLUListElement>(null)
  const heights = useRef(new Map<string, number>())
  const pendingFocus = useRef<number | undefined>(undefined)
  const frame = useRef<number | undefined>(undefined)
  const [scrollTop, setScrollTop] = useState(0)
  const [viewportHeight, setViewportHeight] = useState(estimatedRowHeight * 12)
  const [, setMeasured] = useState(0)
  // The rows' keys are handled once, for the whole list (delegated), with the offsets of the latest render.
  const keyHandler = useRef<(event: KeyboardEvent) => void>(() => {})

  // Where each row starts: measured heights where known, the estimate elsewhere.
  const offsets = new Array<number>(items.length + 1)
  offsets[0] = 0
  for (let i = 0; i < items.length; i++) {
    offsets[i + 1] = (offsets[i] as number) + (heights.current.get(keyOf(items[i] as T)) ?? estimatedRowHeight)
  }
  const total = offsets[items.length] as number
  let first = 0
  for (let low = 0, high = items.length - 1; low <= high; ) {
    const middle = (low + high) >> 1
    if ((offsets[middle + 1] as number) <= scrollTop) low = first = middle + 1
    else high = middle - 1
  }
  let end = first
  while (end < items.length && (offsets[end] as number) < scrollTop + viewportHeight) end++
  const from = Math.max(0, first - overscan)
  const to = Math.min(items.length, end + overscan)

  useEffect(() => {
    const element = viewport.current
    if (!element) return
    const observer = new ResizeObserver(() => setViewportHeight(element.clientHeight))
    observer.observe(element)
    const onKeyDown = (event: KeyboardEvent) => keyHandler.current(event)
    element.addEventListener('keydown', onKeyDown)
    return () => {
      observer.disconnect()
      element.removeEventListener('keydown', onKeyDown)
      if (frame.current !== undefined) cancelAnimationFrame(frame.current)
    }
  }, [])

  // After each render: measure the rows now in the page, and move the focus where the keyboard asked.
  useLayoutEffect(() => {
    let changed = false
    for (const row of Array.from(list.current?.children ?? [])) {
      const key = (row as HTMLElement).dataset.key as string
      const height = (row as HTMLElement).offsetHeight
      if (height > 0 && heights.current.get(key) !== height) {
        heights.current.set(key, height)
        changed = true
      }
    }
    if (changed) setMeasured((n) => n + 1)
    if (pendingFocus.current !== undefined) {
      const row = list.current?.querySelector(`[data-index="${pendingFocus.current}"]`)
      const target = row?.querySelector<HTMLElement>('button, a[href], [tabindex]')
      if (target) {
        target.focus({ preventScroll: true })
        pendingFocus.current = undefined
      }
    }
  })

  const onScroll = () => {
    if (frame.current !== undefined) return
    frame.current = requestAnimationFrame(() => {
      frame.current = undefined
      if (viewport.current) setScrollTop(viewport.current.scrollTop)
    })
  }

  const moveFocus = (index: number) => {
    const element = viewport.current
    if (!element || items.length === 0) return
    const target = Math.max(0, Math.min(items.length - 1, index))
    const top = offsets[target] as number
    const bottom = offsets[target + 1] as number
    if (top < element.scrollTop) element.scrollTop = top
    else if (bottom > element.scrollTop + element.clientHeight) element.scrollTop = bottom - element.clientHeight
    pendingFocus.current = target
    setScrollTop(element.scrollTop)
    setMeasured((n) => n + 1)
  }

  keyHandler.current = (event: KeyboardEvent) => {
    const row = (event.target as Element).closest<HTMLElement>('[data-index]')
    if (!row) return
    const index = Number(row.dataset.index)
    const page = Math.max(1, Math.floor((viewport.current?.clientHeight ?? 0) / estimatedRowHeight) - 1)
    const moves: Record<string, number> = {
      ArrowDown: index + 1,
      ArrowUp: index - 1,
      PageDown: index + page,
      PageUp: index - page,
      Home: 0,
      End: items.length - 1,
    }
    const next = moves[event.key]
    if (next === undefined || event.altKey || event.ctrlKey || event.metaKey) return
    event.preventDefault()
    moveFocus(next)
  }

  return (
    <div ref={viewport} class={`virtual-list ${props.class ?? ''}`} onScroll={onScroll}>
      <ul
        ref={list}
        style={{ paddingTop: `${offsets[from]}px`, paddingBottom: `${total - (offsets[to] as number)}px` }}
      >
        {items.slice(from, to).map((item, i) => {
          const key = keyOf(item)
          return (
            <li key={key} data-key={key} data-index={from + i} aria-setsize={items.length} aria-posinset={from + i + 1}>
              {props.render(item)}
            </li>
          )
        })}
      </ul>
    </div>
  )
}
